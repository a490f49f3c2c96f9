"""din-mobilenet-vgg: the paper's compact architecture (our reconstruction).

content --[3x3 s2, DWSep s2, DWSep, DWSep s2]--> 1/8 --DIN(relu4_1)--> residual DWSep blocks
        --up, DWSep--> 1/4 --DIN(relu3_1)--> DWSep --up, DWSep--> 1/2 --DIN(relu2_1)--> up, 3x3 conv --> image

Full-resolution layers are the expensive ones, so the only full-resolution layer is the output conv;
the budget goes to the 1/8 bottleneck and to the grouped dynamic kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import DINContext, StyleTransferNet
from .blocks import Conv, DWSep, ResDWSep, Up
from .levels import three_level_style_side


@dataclass
class DINMobileNetVGGConfig:
    widths: tuple[int, int, int] = (32, 64, 128)  # channels at 1/2, 1/4, 1/8
    res_blocks: int = 4
    din_kernel: int = 3
    din_groups: tuple[int, int, int] = (4, 4, 32)  # at 1/8, 1/4, 1/2 (32 at 1/2 = depthwise)
    style_encoder: str = "vgg19"
    style_hidden: int = 128
    seed: int = 0  # for random-* style encoders
    deformable: bool = False  # deformable DIN levels (see layers/deform.py)


class DINMobileNetVGG(StyleTransferNet):
    arch = "din-mobilenet-vgg"
    pad_multiple = 8

    def __init__(self, config: DINMobileNetVGGConfig | None = None, backbone=None):
        super().__init__(config or DINMobileNetVGGConfig())
        c = self.config
        w2, w4, w8 = c.widths
        self.specs, self.style_encoder, self.dins = three_level_style_side(c, backbone)
        self.encoder = nn.Sequential(Conv(3, w2, 3, stride=2), DWSep(w2, w4, stride=2), DWSep(w4, w4),
                                     DWSep(w4, w8, stride=2))
        self.bottleneck = nn.Sequential(*[ResDWSep(w8) for _ in range(c.res_blocks)])
        self.up4 = Up(DWSep(w8, w4))
        self.mid4 = DWSep(w4, w4)
        self.up2 = Up(DWSep(w4, w2))
        self.out = Up(Conv(w2, 3, 3, act=False))

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, f: torch.Tensor, ctx: DINContext) -> torch.Tensor:
        f = self.bottleneck(self.apply_din(ctx, "din8", f))
        f = self.mid4(self.apply_din(ctx, "din4", self.up4(f)))
        f = self.apply_din(ctx, "din2", self.up2(f))
        return self.out(f)


class DINMobileNetVGGDeform(DINMobileNetVGG):
    """din-mobilenet-vgg with deformable DIN levels (the registry's preset sets ``deformable``): its own name
    in files."""

    arch = "din-mobilenet-vgg-deform"
