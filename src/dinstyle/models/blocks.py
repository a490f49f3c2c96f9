"""Small building blocks: reflect-padded convs, MobileNet depthwise-separable blocks, upsampling.

No batch/instance norm inside the content path: DIN is its only normalisation, so whole-image
statistics (tiling) and time-smoothed statistics (video) can be injected at the DIN layers alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.din import pad_same
from ..layers.fast_conv import full_size_contract


class Conv(nn.Module):
    """Reflect-padded k x k conv (+ ReLU)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.k, self.act = k, act
        self.conv = nn.Conv2d(cin, cout, k, stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(pad_same(x, self.k))
        return F.relu(y) if self.act else y


class FullSizeContract(nn.Sequential):
    """``Conv(3, c1, k)``, ``Conv(c1, c2, stride=2)``, then any further blocks, run with the full-size map between
    the first two kept space-to-depth (``layers.fast_conv.full_size_contract``): the same parameters (so the same
    state-dict keys) and output, 2-3x faster on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second, *rest = self
        x = full_size_contract(x, first.conv, second.conv)
        for block in rest:
            x = block(x)
        return x


class DWSep(nn.Module):
    """MobileNet depthwise-separable block: 3x3 depthwise (optionally strided) + 1x1 pointwise."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: bool = True):
        super().__init__()
        self.dw = Conv(cin, cin, 3, stride, groups=cin)
        self.pw = Conv(cin, cout, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class ResBlock(nn.Module):
    """Residual pair of blocks (dense 3x3 convs by default; depthwise-separable in ResDWSep)."""

    def __init__(self, c: int, block=None):
        super().__init__()
        block = block or (lambda cin, cout, act=True: Conv(cin, cout, act=act))
        self.body = nn.Sequential(block(c, c), block(c, c, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class ResDWSep(ResBlock):
    """Residual pair of depthwise-separable blocks at the bottleneck."""

    def __init__(self, c: int):
        super().__init__(c, DWSep)


class Up(nn.Module):
    """Nearest 2x upsampling then a conv block: no transposed convs, so no checkerboards."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.interpolate(x, scale_factor=2.0, mode="nearest"))
