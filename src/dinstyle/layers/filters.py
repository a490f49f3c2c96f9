"""Image filters shared by the stroke metrics (``eval``) and the automatic stroke map (``runtime.controls``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian (radius 3 sigma), reflect padding (replicate when the image is too small)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def gradient_magnitude(img: torch.Tensor) -> torch.Tensor:
    """Sobel magnitude per channel, divided by 8 (a unit step gives ~0.5), max over channels: (B, 1, H, W)."""
    sx = img.new_tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    k = torch.stack([sx, sx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    b, c, h, w = img.shape
    g = F.conv2d(F.pad(img.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="replicate"), k)
    return g.square().sum(1).sqrt().view(b, c, h, w).amax(1, keepdim=True)
