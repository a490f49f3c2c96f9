"""The style side: a frozen backbone and, per DIN level, a weight net and a bias net.

Paid once per style; its output is a StyleCode.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..backbones import Backbone
from ..layers.din import identity_kernel
from ..layers.pool import adaptive_avg_pool2d
from .blocks import Conv


@dataclass(frozen=True)
class DINSpec:
    """One DIN level: its name, channels, kernel size, groups, and which backbone style tap feeds it."""

    name: str
    channels: int
    kernel_size: int
    groups: int
    tap_index: int  # index into backbone.style_taps


class WeightNet(nn.Module):
    """Style features -> (Cout, Cin/g, k, k) kernel: convs, adaptive pooling to k x k, then a 1x1 projection.

    The kernel is identity + a small learnt delta, so an untrained DIN is close to plain instance norm.
    Nothing normalises the pooled map (a 1x1 map has no spatial statistics to normalise).
    """

    def __init__(self, in_ch: int, spec: DINSpec, hidden: int):
        super().__init__()
        self.spec = spec
        cout, cin_g, k, _ = spec.channels, spec.channels // spec.groups, spec.kernel_size, None
        self.body = nn.Sequential(Conv(in_ch, hidden, stride=2), Conv(hidden, hidden, stride=2))
        self.proj = nn.Conv2d(hidden, cout * cin_g, 1)
        nn.init.normal_(self.proj.weight, std=1e-3 / hidden**0.5)
        nn.init.zeros_(self.proj.bias)
        self.register_buffer("identity", identity_kernel(cout, spec.groups, k), persistent=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        k = self.spec.kernel_size
        delta = self.proj(adaptive_avg_pool2d(self.body(feat), k))  # (B, Cout*Cin/g, k, k)
        return self.identity + delta.view(feat.shape[0], *self.identity.shape)


class BiasNet(nn.Module):
    """Style features -> (Cout,) bias: convs, global pooling, 1x1 projection (initialised near zero)."""

    def __init__(self, in_ch: int, spec: DINSpec, hidden: int):
        super().__init__()
        self.body = nn.Sequential(Conv(in_ch, hidden, stride=2), Conv(hidden, hidden, stride=2))
        self.proj = nn.Conv2d(hidden, spec.channels, 1)
        # Small rather than zero, so gradients reach the body from the first step.
        nn.init.normal_(self.proj.weight, std=1e-3 / hidden**0.5)
        nn.init.zeros_(self.proj.bias)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.proj(adaptive_avg_pool2d(self.body(feat), 1)).flatten(1)


def unit_rms(f: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each style's features divided by their overall RMS. Backbones differ ~1000x in feature scale (Caffe
    VGG-19 reads 0-255 input); unscaled, the weight nets' kernels grew to norms in the thousands within 200
    training steps and the style was mostly ignored. Channel ratios and spatial structure are kept."""
    return f / (f.float().pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().to(f.dtype) + eps)


class StyleEncoder(nn.Module):
    """Frozen backbone + per-level weight/bias nets: style image -> {level.weight, level.bias}."""

    def __init__(self, backbone: Backbone, specs: list[DINSpec], hidden: int = 128):
        super().__init__()
        self.backbone = backbone
        self.specs = specs
        taps = backbone.style_taps
        self.weight_nets = nn.ModuleDict(
            {s.name: WeightNet(backbone.tap_channels[taps[s.tap_index]], s, hidden) for s in specs})
        self.bias_nets = nn.ModuleDict(
            {s.name: BiasNet(backbone.tap_channels[taps[s.tap_index]], s, hidden) for s in specs})

    @property
    def taps(self) -> list[str]:
        """The backbone taps the weight and bias nets read (training caches them per style)."""
        return sorted({self.backbone.style_taps[s.tap_index] for s in self.specs}, key=self.backbone.style_taps.index)

    def taps_of(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the frozen part makes of a style image: the weight and bias nets read nothing else."""
        return self.backbone(style, set(self.taps))

    def forward(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.from_taps(self.taps_of(style))

    def from_taps(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The style code from backbone features already computed (``{tap: (B, C, h, w)}``)."""
        taps = self.backbone.style_taps
        out = {}
        for s in self.specs:
            f = unit_rms(feats[taps[s.tap_index]])
            out[f"{s.name}.weight"] = self.weight_nets[s.name](f)
            out[f"{s.name}.bias"] = self.bias_nets[s.name](f)
        return out
