"""Deformable DIN: instance norm, then a *deformable* dynamic convolution (DCNv2 style).

The kernel and bias come from the style, exactly as in DIN; the sampling offsets (where each of the
k x k taps reads) and a modulation mask (how much each tap counts) are predicted from the *content*
features. Strokes can then follow the content (uniform placement on flat graphics, stroke size adapted
to the region) without a user mask. The predictor is zero-initialised, so an untrained layer is exactly
the plain dynamic conv (offsets 0, mask 2*sigmoid(0) = 1).

Border rule: taps sample the reflect-padded input (the same padding as the plain DIN) with bilinear
interpolation, and read zeros outside that padded map. So zero offsets with a unit mask give exactly
``dynamic_conv2d``, and offsets that leave the padded map behave as zero padding.

Layouts follow ``torchvision.ops.deform_conv2d``: offsets (B, 2*G*k*k, H, W) as (dy, dx) pairs per tap
(taps row-major, G offset groups), mask (B, G*k*k, H, W). Where torchvision is importable and the input is
on CUDA, its kernel is used instead of the pure-PyTorch one (tests check they agree).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .din import DIN, EPS, pad_same

Stroke = Optional[float | torch.Tensor]


@functools.lru_cache(maxsize=None)
def _torchvision_deform_conv2d() -> Callable | None:
    try:  # optional: torchvision is never a dependency
        from torchvision.ops import deform_conv2d
    except Exception:  # not installed, or built against another torch
        return None
    return deform_conv2d


def deform_sample(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None, k: int) -> torch.Tensor:
    """The k*k deformed, modulated copies of ``x`` that a deformable k x k 'same' conv reads.

    x: (B, C, H, W); offset: (B, 2*G*k*k, H, W) in pixels; mask: (B, G*k*k, H, W) or None.
    Returns (B, C, k*k, H, W). Tap (a, b) of output pixel (i, j) reads the reflect-padded input at
    (i + a + dy, j + b + dx), bilinearly, zero outside the padded map. One ``grid_sample`` call for the
    whole batch: the batch and the G offset groups are folded into grid_sample's batch.
    """
    b, c, h, w = x.shape
    kk = k * k
    g = offset.shape[1] // (2 * kk)
    if offset.shape[1] != 2 * g * kk or g < 1 or c % g:
        raise ValueError(f"offset has {offset.shape[1]} channels: need 2*G*{kk} with G dividing {c}")
    # Positions in bf16/fp16 would be off by whole pixels on big maps: sample in fp32 (fp64 stays fp64).
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(x.device.type, enabled=False):
        xp = pad_same(x.to(dt), k)
        hp, wp = xp.shape[-2:]
        off = offset.to(dt).view(b, g, kk, 2, h, w)
        taps = torch.arange(k, device=x.device, dtype=dt)
        tap_y = taps.repeat_interleave(k).view(kk, 1, 1)  # row of each tap, row-major
        tap_x = taps.repeat(k).view(kk, 1, 1)
        py = off[:, :, :, 0] + tap_y + torch.arange(h, device=x.device, dtype=dt).view(1, h, 1)
        px = off[:, :, :, 1] + tap_x + torch.arange(w, device=x.device, dtype=dt).view(1, 1, w)
        # align_corners=False: pixel centre p sits at (2p + 1) / size - 1 (no division by size - 1 = 0)
        grid = torch.stack(((2 * px + 1) / wp - 1, (2 * py + 1) / hp - 1), dim=-1)  # (B, G, kk, H, W, 2)
        cols = F.grid_sample(xp.reshape(b * g, c // g, hp, wp), grid.reshape(b * g, kk * h, w, 2),
                             mode="bilinear", padding_mode="zeros", align_corners=False)
        cols = cols.view(b, g, c // g, kk, h, w)
        if mask is not None:
            cols = cols * mask.to(dt).view(b, g, 1, kk, h, w)
    return cols.view(b, c, kk, h, w).to(x.dtype)


def contract(cols: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor:
    """Apply per-sample grouped kernels to sampled taps: one batched matmul, no loop over the batch.

    cols: (B, C, k*k, H, W); weight: (B or 1, Cout, C // groups, k, k); bias: (B or 1, Cout) or None.
    """
    b, c, kk, h, w = cols.shape
    cout = weight.shape[1]
    lhs = weight.reshape(weight.shape[0], groups, cout // groups, (c // groups) * kk)
    y = torch.matmul(lhs, cols.reshape(b, groups, (c // groups) * kk, h * w)).view(b, cout, h, w)
    if bias is not None:
        y = y + bias.expand(b, cout).reshape(b, cout, 1, 1)
    return y


def deform_dynamic_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          offset: torch.Tensor, mask: torch.Tensor | None, groups: int = 1) -> torch.Tensor:
    """Per-sample deformable 'same' convolution in pure PyTorch (CPU and GPU, differentiable in all inputs)."""
    return contract(deform_sample(x, offset, mask, weight.shape[-1]), weight, bias, groups)


def deform_dynamic_conv2d_torchvision(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                                      offset: torch.Tensor, mask: torch.Tensor | None, groups: int = 1
                                      ) -> torch.Tensor:
    """The same operation through ``torchvision.ops.deform_conv2d`` (batch folded into conv and offset
    groups, on the reflect-padded input with padding 0). Raises RuntimeError without torchvision."""
    tv = _torchvision_deform_conv2d()
    if tv is None:
        raise RuntimeError("torchvision.ops.deform_conv2d is not available")
    b, c, h, w = x.shape
    cout, k = weight.shape[1], weight.shape[-1]
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32  # its kernels have no bf16
    with torch.autocast(x.device.type, enabled=False):
        xp = pad_same(x.to(dt), k)
        wf = weight.to(dt).expand(b, *weight.shape[1:]).reshape(b * cout, c // groups, k, k)
        mf = None if mask is None else mask.to(dt).reshape(1, b * mask.shape[1], h, w)
        y = tv(xp.reshape(1, b * c, *xp.shape[-2:]), offset.to(dt).reshape(1, b * offset.shape[1], h, w), wf,
               mask=mf).view(b, cout, h, w)
        if bias is not None:
            y = y + bias.to(dt).expand(b, cout).reshape(b, cout, 1, 1)
    return y.to(x.dtype)


class DeformConvOp(nn.Module):
    """Parameter-free module around the operation, so ``dinstyle profile`` sees the sampling cost
    (its forward hook calls ``uncounted_macs``; the flop counter already counts the matmul)."""

    use_torchvision: bool | None = None  # None = when importable and the input is on CUDA

    def __init__(self, groups: int, kernel_size: int, offset_groups: int = 1):
        super().__init__()
        self.groups, self.kernel_size, self.offset_groups = groups, kernel_size, offset_groups

    def forward(self, x, weight, bias, offset, mask):
        if self._torchvision_wanted(x):
            return deform_dynamic_conv2d_torchvision(x, weight, bias, offset, mask, self.groups)
        return deform_dynamic_conv2d(x, weight, bias, offset, mask, self.groups)

    def _torchvision_wanted(self, x: torch.Tensor) -> bool:
        want = self.use_torchvision
        if want is None:
            want = x.is_cuda and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()
        return bool(want) and _torchvision_deform_conv2d() is not None

    def uncounted_macs(self, x: torch.Tensor) -> int:
        """Bilinear sampling (4 MACs per sampled value) + modulation (1) + grid arithmetic (~4 per tap)."""
        b, c, h, w = x.shape
        kk = self.kernel_size ** 2
        return 5 * b * c * kk * h * w + 4 * b * self.offset_groups * kk * h * w


class DeformableDIN(DIN):
    """IN(x), then a deformable dynamic k x k convolution: style-given kernel and bias, content-predicted
    offsets and modulation mask.

    ``stroke`` (``conv``/``forward`` argument) multiplies the predicted offsets: None or 1 = as trained,
    0 = no deformation, > 1 = wider reach (bigger strokes); a (B|1, 1, H, W) map of multipliers at any
    resolution (usually the input image's) is resized to the feature map and applied per pixel.

    Cost in ``dinstyle profile``: the offset predictor's convs and the kernel matmul are counted by the
    flop counter, the bilinear sampling by ``DeformConvOp.uncounted_macs``, the instance norm by
    ``InstanceNormOp.uncounted_macs``.
    """

    def __init__(self, channels: int, kernel_size: int = 3, groups: int = 1, eps: float = EPS,
                 offset_groups: int = 1):
        super().__init__(channels, kernel_size, groups, eps)
        if channels % offset_groups:
            raise ValueError(f"channels {channels} not divisible by offset_groups {offset_groups}")
        self.offset_groups = offset_groups
        kk = kernel_size * kernel_size
        # Depthwise-separable predictor (cheap next to a full 3x3 conv at high resolution).
        self.offset_dw = nn.Conv2d(channels, channels, 3, groups=channels)
        self.offset_pw = nn.Conv2d(channels, 3 * offset_groups * kk, 1)
        nn.init.zeros_(self.offset_pw.weight)  # zero offsets and unit mask at init: plain DIN
        nn.init.zeros_(self.offset_pw.bias)
        self.op = DeformConvOp(groups, kernel_size, offset_groups)

    def predict_offsets(self, xn: torch.Tensor, stroke: Stroke = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(offset (B, 2*G*k*k, H, W) scaled by ``stroke``, mask (B, G*k*k, H, W) in (0, 2)) from ``xn``."""
        raw = self.offset_pw(F.relu(self.offset_dw(pad_same(xn, 3))))
        n = 2 * self.offset_groups * self.kernel_size ** 2
        offset, mask = raw[:, :n], 2 * torch.sigmoid(raw[:, n:])
        scale = stroke_scale(stroke, xn)
        if scale is not None:
            offset = offset * scale
        return offset, mask

    def conv(self, xn: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stroke: Stroke = None) -> torch.Tensor:
        offset, mask = self.predict_offsets(xn, stroke)
        return self.op(xn, weight, bias, offset, mask)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", offset_groups={self.offset_groups}"


def stroke_scale(stroke: Stroke, like: torch.Tensor) -> torch.Tensor | float | None:
    """``stroke`` as a multiplier for offsets of feature map ``like``: None (no scaling), a number, or a
    (B|1, 1, H, W) tensor resized to ``like`` (area when shrinking, bilinear when enlarging)."""
    if stroke is None:
        return None
    if not torch.is_tensor(stroke) or stroke.dim() == 0:
        s = float(stroke)
        if not math.isfinite(s) or s < 0:
            raise ValueError(f"stroke size must be a finite number >= 0, got {s}")
        return None if s == 1.0 else s
    if stroke.dim() != 4 or stroke.shape[1] != 1 or stroke.shape[0] not in (1, like.shape[0]):
        raise ValueError(f"stroke map must be (B|1, 1, H, W), got {tuple(stroke.shape)}")
    h, w = like.shape[-2:]
    s = stroke.to(like.dtype)
    if s.shape[-2:] != (h, w):
        shrink = s.shape[-2] >= h and s.shape[-1] >= w
        s = F.interpolate(s, size=(h, w), mode="area") if shrink else \
            F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
    return s  # (B|1, 1, H, W): broadcasts over the 2*G*k*k offset channels
