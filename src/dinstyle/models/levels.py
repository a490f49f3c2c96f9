"""The three-level DIN layout shared by din-mobilenet-vgg and din-fast: DIN at 1/8, 1/4 and 1/2 of the content,
with kernels from the style backbone's 4th, 3rd and 2nd taps (VGG-19: relu4_1, relu3_1, relu2_1)."""
from __future__ import annotations

from torch import nn

from ..backbones import create_backbone
from ..layers.din import DIN
from .style import DINSpec, StyleEncoder


def make_din(spec: DINSpec, deformable: bool) -> nn.Module:
    if deformable:
        from ..layers.deform import DeformableDIN

        return DeformableDIN(spec.channels, spec.kernel_size, spec.groups)
    return DIN(spec.channels, spec.kernel_size, spec.groups)


def three_level_style_side(config, backbone=None) -> tuple[list[DINSpec], StyleEncoder, nn.ModuleDict]:
    """(specs, style encoder, DIN layers) from a config with widths, din_groups, din_kernel, style_encoder,
    style_hidden, seed and deformable."""
    w2, w4, w8 = config.widths[-3:]
    g8, g4, g2 = config.din_groups
    k = config.din_kernel
    specs = [DINSpec("din8", w8, k, g8, 3), DINSpec("din4", w4, k, g4, 2), DINSpec("din2", w2, k, g2, 1)]
    backbone = backbone or create_backbone(config.style_encoder, seed=config.seed)
    encoder = StyleEncoder(backbone, specs, config.style_hidden)
    return specs, encoder, nn.ModuleDict({s.name: make_din(s, config.deformable) for s in specs})
