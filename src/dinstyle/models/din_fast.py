"""din-fast: a CPU-friendly DIN generator with a 1/8 body, U-Net skips through DIN, and dense convs.

content --conv s2--> e2 (1/2) --conv s2--> e4 (1/4) --conv s2--> e8 (1/8)
e8 --DIN8--> residual blocks --conv, up--> (+ e4) --DIN4--> conv --conv, up--> (+ e2) --DIN2--> conv
   --up, conv--> image

Why this shape (measured against din-mobilenet-vgg on the 2-core CPU, see docs/MODEL_CARD.md):
- dense 3x3 convs at low resolution run ~10x more MACs per second than depthwise ones on CPUs, so at the
  same wall time the network can be several times wider;
- every skip joins the decoder *before* a DIN level, so the content's fine structure reaches the output
  only through a style-driven dynamic conv: detail is stylized, not pasted through, and at alpha=0 the
  skips make reconstruction easy;
- convs sit before each upsampling (cheaper at the lower resolution); the only full-resolution layer is
  the 3-channel output conv. DIN stays the only normalisation, so tiling and video statistics still
  work level by level.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import DINContext, StyleTransferNet
from .blocks import Conv, ResBlock
from .levels import three_level_style_side


@dataclass
class DINFastConfig:
    widths: tuple[int, int, int] = (32, 48, 96)  # channels at 1/2, 1/4, 1/8
    out_width: int = 16  # channels of the last 1/2-scale conv before the output
    res_blocks: int = 2
    din_kernel: int = 3
    din_groups: tuple[int, int, int] = (8, 6, 4)  # at 1/8, 1/4, 1/2
    style_encoder: str = "vgg19"
    style_hidden: int = 128
    style_size: int = 256  # long side a style image is encoded at by default (as in training)
    seed: int = 0  # for random-* style encoders
    deformable: bool = False


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class DINFast(StyleTransferNet):
    arch = "din-fast"
    pad_multiple = 8

    def __init__(self, config: DINFastConfig | None = None, backbone=None):
        super().__init__(config or DINFastConfig())
        c = self.config
        w2, w4, w8 = c.widths
        self.specs, self.style_encoder, self.dins = three_level_style_side(c, backbone)
        self.enc2, self.enc4, self.enc8 = Conv(3, w2, stride=2), Conv(w2, w4, stride=2), Conv(w4, w8, stride=2)
        self.body8 = nn.Sequential(*[ResBlock(w8) for _ in range(c.res_blocks)])
        self.to4 = Conv(w8, w4)
        self.body4 = Conv(w4, w4)
        self.to2 = Conv(w4, w2)
        self.body2 = Conv(w2, c.out_width)
        self.out = Conv(c.out_width, 3, act=False)

    @property
    def style_size(self) -> int:
        return self.config.style_size

    def encode_content(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e2 = self.enc2(x)
        e4 = self.enc4(e2)
        return e2, e4, self.enc8(e4)

    def decode(self, feats, ctx: DINContext) -> torch.Tensor:
        e2, e4, e8 = feats
        f = self.body8(self.apply_din(ctx, "din8", e8))
        f = self.body4(self.apply_din(ctx, "din4", up2(self.to4(f)) + e4))
        f = self.body2(self.apply_din(ctx, "din2", up2(self.to2(f)) + e2))
        return self.out(up2(f))


class DINFastDeform(DINFast):
    """din-fast with deformable DIN levels (the registry's preset sets ``deformable``): its own name in files."""

    arch = "din-fast-deform"
