"""Dynamic Instance Normalization: instance norm, then a convolution whose kernel and bias come from the style.

AdaIN is the special case k=1, groups=C, weight=sigma(style), bias=mu(style).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .reference import use_reference_forms

EPS = 1e-5


def instance_stats(x: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std over H, W (biased variance, as in instance norm).

    Two passes over x shifted by its first pixel, rather than ``torch.var_mean``: on the CPU var_mean took
    10-13 ms on an 8 x 512 x 512 map against about 1.5 ms for this, as exact (issue 24). The shift makes a
    constant channel's mean exactly its value (x - mean exactly 0, as var_mean and the tiles' float64 sums give:
    a dead channel's rounding would otherwise be divided by sqrt(eps)), and avoids E[x^2] - E[x]^2 cancellation."""
    n, c, h, w = x.shape
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # channels-last: reduce the (N, HW, C) view over its middle dim, which reads memory in order (2-4x faster)
        flat = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
        mean, var = _shifted_mean_var(flat, flat[:, :1], 1)
        return mean.view(n, c, 1, 1), (var.view(n, c, 1, 1) + eps).sqrt()
    mean, var = _shifted_mean_var(x, x[:, :, :1, :1], (2, 3))
    return mean, (var + eps).sqrt()


def _shifted_mean_var(x: torch.Tensor, shift: torch.Tensor, dims) -> tuple[torch.Tensor, torch.Tensor]:
    d = x - shift
    dm = d.mean(dim=dims, keepdim=True)
    if torch.is_grad_enabled() and x.requires_grad:  # training: autograd needs every intermediate
        d = d - dm
        return shift + dm, (d * d).mean(dim=dims, keepdim=True)
    # one temporary, reused: a fresh full-size map per step costs its page faults again (8 MB at 8 x 512 x 512)
    # (not vector_norm's square: 50x less exact)
    return shift + dm, d.sub_(dm).square_().mean(dim=dims, keepdim=True)


def instance_stats_reference(x: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return mean, (var + eps).sqrt()


def pad_same(x: torch.Tensor, k: int) -> torch.Tensor:
    """Reflect-pad for a 'same' k x k conv (replicate when the map is too small to reflect)."""
    p = k // 2
    if p == 0:
        return x
    mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
    return F.pad(x, (p, p, p, p), mode=mode)


def dynamic_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int = 1) -> torch.Tensor:
    """Per-sample 'same' convolution without a Python loop: the batch is folded into conv groups.

    x: (B, C, H, W); weight: (B or 1, Cout, C // groups, k, k); bias: (B or 1, Cout) or None.
    """
    b, c, h, w = x.shape
    if b == 1 and weight.shape[0] == 1:  # one image, one style: a plain grouped conv (what export traces)
        return F.conv2d(pad_same(x, weight.shape[-1]), weight[0], None if bias is None else bias[0], groups=groups)
    if weight.shape[0] != b:
        weight = weight.expand(b, *weight.shape[1:])
    cout, k = weight.shape[1], weight.shape[-1]
    y = F.conv2d(pad_same(x, k).reshape(1, b * c, h + k // 2 * 2, w + k // 2 * 2),
                 weight.reshape(b * cout, c // groups, k, k), groups=b * groups)
    y = y.view(b, cout, h, w)
    if bias is not None:
        y = y + bias.expand(b, cout).reshape(b, cout, 1, 1)
    return y


def dynamic_conv2d_reference(x, weight, bias, groups: int = 1):
    """Slow reference: one ordinary conv per sample (tests compare the folded version with it)."""
    outs = []
    for i in range(x.shape[0]):
        wi = weight[i if weight.shape[0] > 1 else 0]
        bi = None if bias is None else bias[i if bias.shape[0] > 1 else 0]
        outs.append(F.conv2d(pad_same(x[i : i + 1], wi.shape[-1]), wi, bi, groups=groups))
    return torch.cat(outs)


def identity_kernel(channels: int, groups: int, k: int) -> torch.Tensor:
    """The (C, C/g, k, k) kernel that maps every channel to itself: DIN with it is plain instance norm."""
    cg = channels // groups
    w = torch.zeros(channels, cg, k, k)
    w[torch.arange(channels), torch.arange(channels) % cg, k // 2, k // 2] = 1.0
    return w


class InstanceNormOp(nn.Module):
    """Parameter-free instance norm with optional injected statistics.

    A module of its own so that ``dinstyle profile``'s forward hooks see (and count) it: the flop
    counter skips elementwise work.
    """

    def __init__(self, eps: float = EPS):
        super().__init__()
        self.eps = eps

    def forward(self, x, mean=None, std=None):
        if mean is None or std is None:
            mean, std = instance_stats(x, self.eps)
        return (x - mean) / std

    def uncounted_macs(self, x: torch.Tensor) -> int:
        return 2 * x.numel()  # ~2 MACs per element: statistics, then scale


class DIN(nn.Module):
    """IN(x) followed by a dynamic k x k convolution with ``groups`` groups (C in, C out).

    ``mean``/``std`` may be given from outside: tiling passes whole-image statistics and video
    passes time-smoothed ones. Subclasses (deformable DIN) override ``conv``.
    """

    def __init__(self, channels: int, kernel_size: int = 3, groups: int = 1, eps: float = EPS):
        super().__init__()
        if channels % groups:
            raise ValueError(f"channels {channels} not divisible by groups {groups}")
        self.channels, self.kernel_size, self.groups, self.eps = channels, kernel_size, groups, eps
        self.instance_norm = InstanceNormOp(eps)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.channels, self.channels // self.groups, self.kernel_size, self.kernel_size)

    def normalize(self, x, mean=None, std=None):
        return self.instance_norm(x, mean, std)

    def conv(self, xn: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stroke=None) -> torch.Tensor:
        return dynamic_conv2d(xn, weight, bias, self.groups)  # a plain kernel has no stroke control

    def forward(self, x: torch.Tensor, weights, biases, masks=None, stats=None, stroke=None):
        """The whole DIN operation of one level: instance norm (with ``stats`` = (mean, std) from outside when
        given: whole-image statistics for tiles, time-smoothed ones for video), then each style code's dynamic
        conv (``weights``/``biases``: one tensor, or one per code), each weighted by its soft mask (B|1, 1, H, W)
        when ``masks`` are given. Alpha is not applied here: it moves the codes (``models.base.codes_at_alpha``)."""
        if torch.is_tensor(weights):
            weights, biases = [weights], [biases]
        if self._is_affine():
            return self._affine_forward(x, weights, biases, masks, stats)
        xn = self.normalize(x, *(stats or (None, None)))
        y = None
        for i, (w, b) in enumerate(zip(weights, biases)):
            yi = self.conv(xn, w.to(x.dtype), b.to(x.dtype), stroke=stroke)
            if masks is not None:
                yi = yi * F.interpolate(masks[i].to(x.dtype), size=x.shape[-2:], mode="bilinear", align_corners=False)
            y = yi if y is None else y + yi
        return y

    def _is_affine(self) -> bool:
        """A 1x1 depthwise kernel (AdaIN's case, din-magenta's levels) is a per-channel scale and shift."""
        return (self.kernel_size == 1 and self.groups == self.channels and type(self).conv is DIN.conv
                and not use_reference_forms())

    def _affine_forward(self, x, weights, biases, masks, stats):
        """The same operation in one pass over ``x``: instance norm and the 1x1 depthwise conv folded into
        x * (w / std) + (b - mean * w / std) (issue 24: norm, then conv, read and wrote the map three times)."""
        mean, std = stats if stats else instance_stats(x, self.eps)
        b = x.shape[0]
        y = None
        for i, (w, bias) in enumerate(zip(weights, biases)):
            scale = w.to(x.dtype).reshape(-1, self.channels, 1, 1) / std
            shift = bias.to(x.dtype).reshape(-1, self.channels, 1, 1) - mean * scale
            yi = torch.addcmul(shift.expand(b, -1, -1, -1), x, scale)
            if masks is not None:
                yi = yi * F.interpolate(masks[i].to(x.dtype), size=x.shape[-2:], mode="bilinear", align_corners=False)
            y = yi if y is None else y + yi
        return y

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, groups={self.groups}"


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Reference AdaIN (Huang & Belongie 2017) used by tests and the baseline."""
    cm, cs = instance_stats(content, eps)
    sm, ss = instance_stats(style, eps)
    return (content - cm) / cs * ss + sm
