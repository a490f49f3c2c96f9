"""The AdaIN baseline (Huang & Belongie 2017): VGG-19 to relu4_1 for content and style, AdaIN, and the
mirrored decoder of naoto0804/pytorch-AdaIN. Written as a DIN model with a 1x1 depthwise kernel equal to
the style std and bias equal to the style mean, so it shares every tool (codes, alpha, masks, tiling)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..backbones import create_backbone
from ..layers.din import DIN, instance_stats
from .base import DINContext, StyleTransferNet
from .blocks import Conv, Up
from .stylecode import StyleCode


@dataclass
class AdaINConfig:
    style_encoder: str = "vgg19"  # also the content encoder
    seed: int = 0


class AdaIN(StyleTransferNet):
    arch = "adain"
    pad_multiple = 8

    def __init__(self, config: AdaINConfig | None = None, backbone=None):
        super().__init__(config or AdaINConfig())
        if not self.config.style_encoder.startswith(("vgg19", "random-vgg19")):
            raise ValueError("adain needs a VGG-19 encoder (vgg19, random-vgg19 or vgg19:PATH)")
        self.encoder = backbone or create_backbone(self.config.style_encoder, seed=self.config.seed)
        self.dins = nn.ModuleDict({"adain": DIN(512, kernel_size=1, groups=512)})
        self.decoder = nn.Sequential(
            Conv(512, 256), Up(Conv(256, 256)), Conv(256, 256), Conv(256, 256), Conv(256, 128),
            Up(Conv(128, 128)), Conv(128, 64), Up(Conv(64, 64)), Conv(64, 3, act=False))

    @property
    def style_encoder(self):  # the shared VGG; exposed under the common name
        return self.encoder

    def encode_style(self, style: torch.Tensor) -> StyleCode:
        mean, std = instance_stats(self.encoder(style, ["relu4_1"])["relu4_1"])
        b, c = mean.shape[:2]
        return StyleCode({"adain.weight": std.view(b, c, 1, 1, 1), "adain.bias": mean.view(b, c)}, {"arch": self.arch})

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, ["relu4_1"])["relu4_1"]

    def decode(self, f: torch.Tensor, ctx: DINContext) -> torch.Tensor:
        return self.decoder(self.apply_din(ctx, "adain", f))
