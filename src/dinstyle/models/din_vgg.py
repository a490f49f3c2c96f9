"""din-vgg: a compact VGG-style content encoder/decoder (plain 3x3 convs, max-pool, nearest upsampling)
with DIN at 1/8 (relu4_1) and 1/4 (relu3_1)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import create_backbone
from ..layers.din import DIN
from .base import DINContext, StyleTransferNet
from .blocks import Conv, Up
from .style import DINSpec, StyleEncoder


@dataclass
class DINVGGConfig:
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)  # at 1, 1/2, 1/4, 1/8
    din_kernel: int = 3
    din_groups: tuple[int, int] = (4, 4)  # at 1/8, 1/4
    style_encoder: str = "vgg19"
    style_hidden: int = 128
    seed: int = 0


class DINVGG(StyleTransferNet):
    arch = "din-vgg"
    pad_multiple = 8

    def __init__(self, config: DINVGGConfig | None = None, backbone=None):
        super().__init__(config or DINVGGConfig())
        c = self.config
        w1, w2, w4, w8 = c.widths
        self.specs = [DINSpec("din8", w8, c.din_kernel, c.din_groups[0], 3),
                      DINSpec("din4", w4, c.din_kernel, c.din_groups[1], 2)]
        backbone = backbone or create_backbone(c.style_encoder, seed=c.seed)
        self.style_encoder = StyleEncoder(backbone, self.specs, c.style_hidden)
        self.dins = nn.ModuleDict({s.name: DIN(s.channels, s.kernel_size, s.groups) for s in self.specs})
        self.enc = nn.ModuleList([Conv(3, w1), Conv(w1, w2), Conv(w2, w4), Conv(w4, w8)])
        self.dec8 = Conv(w8, w4)
        self.dec4 = Up(Conv(w4, w2))
        self.dec2 = Up(Conv(w2, w1))
        self.out = Conv(w1, 3, act=False)

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.enc):
            x = conv(x if i == 0 else F.max_pool2d(x, 2))
        return x

    def decode(self, f: torch.Tensor, ctx: DINContext) -> torch.Tensor:
        f = self.dec8(self.apply_din(ctx, "din8", f))
        f = self.apply_din(ctx, "din4", F.interpolate(f, scale_factor=2.0, mode="nearest"))
        return self.out(self.dec2(self.dec4(f)))
