"""din-mobilenet: the paper's compact DIN network, distilled from the default (din-magenta).

content -> 3x3 s2 (c2) -> 3x3 s2 (c4)                                       contract to 1/4, style-free
        -> N x residual block at 1/4 with DIN levels                        (dense, or MobileNetV2 inverted)
        -> 3x3 conv (4 c2), pixel shuffle to 1/2, DIN, ReLU
        -> 3x3 conv (12), pixel shuffle to full size (3), DIN, sigmoid

Why this shape (pilots in docs/MODEL_CARD.md): din-magenta spends a third of its 3.3 GMACs at 512 on three
full-resolution convs (9x9 in, 3x3 16->8, 9x9 out), and on this CPU a 3x3 conv that upsamples then convolves
at full size to 3 channels alone took 21 ms at 512 (1.4 ms as a conv at half size and a pixel shuffle). So no
conv runs at full size: both upsamplings are sub-pixel convs (a nearest upsample followed by a 3x3 conv is
exactly one, so din-magenta's ``up2`` converts without change). Convs pad with zeros, fused into the conv:
reflect padding cost more than the 3x3 conv it fed at 1/4 (2.1 vs 0.8 ms). The res blocks, where the style
lives, keep din-magenta's shapes, so the student starts from the teacher's own layers (``from_teacher``).

The style side is din-magenta's: Magenta's MobileNetV2 style predictor (0.39 GMACs per style) and one linear
weight net and bias net per DIN level. Every level shares the vector, so blending, alpha "content" (the
content image's own code, what alpha < 1 blends towards) and style files work as for the default.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.fast_conv import conv_depth_to_space, subpixel_kernel
from .base import DINContext, StyleTransferNet
from .din_magenta import MagentaStyleEncoder, group_size
from .levels import make_din
from .magenta_predictor import PREDICTOR_SIZE
from .pretrained import PretrainedInfo
from .style import DINSpec

BLOCKS = ("dense", "inverted")


@dataclass
class DINMobileNetConfig:
    widths: tuple[int, int] = (16, 32)  # channels at 1/2 and 1/4 (din-magenta's, so its layers transfer)
    res_blocks: int = 3
    block: str = "dense"  # "dense": two 3x3 convs, each with a DIN level (din-magenta's); "inverted": MobileNetV2
    expand: int = 4  # inverted blocks: hidden width = expand x c4
    style_size: int = 256
    style_encoder: str = "magenta-mobilenet-v2"  # recorded in model files; its weights are in the file
    din_kernel: int = 1
    din_group_size: int = 1  # input channels per group (1 = depthwise)
    deformable: bool = False


def level_names(config: DINMobileNetConfig) -> list[str]:
    """The DIN levels in decode order: din-magenta's names, so its weight nets transfer by name."""
    per_block = "ab" if config.block == "dense" else "a"
    return [f"res{i}{s}" for i in range(1, config.res_blocks + 1) for s in per_block] + ["up2", "out"]


class DINMobileNet(StyleTransferNet):
    arch = "din-mobilenet"
    pad_multiple = 4
    style_size_matters = False  # the predictor always sees 256x256

    def __init__(self, config: DINMobileNetConfig | None = None):
        super().__init__(config or DINMobileNetConfig())
        c = self.config
        if c.block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {c.block!r}")
        c2, c4 = c.widths
        self.contract = nn.Sequential(nn.Conv2d(3, c2, 3, 2, 1), nn.ReLU(), nn.Conv2d(c2, c4, 3, 2, 1), nn.ReLU())
        names = level_names(c)
        channels = {n: c4 for n in names[:-2]} | {"up2": c2, "out": 3}
        k = c.din_kernel
        specs = {n: DINSpec(n, ch, k, ch // group_size(c, ch), 0) for n, ch in channels.items()}
        self.dins = nn.ModuleDict({n: make_din(spec, c.deformable) for n, spec in specs.items()})
        # The convs before a DIN have no bias: instance norm would remove it.
        if c.block == "dense":
            self.convs = nn.ModuleDict({n: nn.Conv2d(c4, c4, 3, padding=1, bias=False) for n in names[:-2]})
        else:
            hidden = c.expand * c4
            self.convs = nn.ModuleDict({n: nn.Sequential(
                nn.Conv2d(c4, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
                nn.ReLU(), nn.Conv2d(hidden, c4, 1, bias=False)) for n in names[:-2]})
        # sub-pixel convs: 4x the channels at the lower size, then a pixel shuffle
        self.convs["up2"] = nn.Conv2d(c4, 4 * c2, 3, padding=1, bias=False)
        self.convs["out"] = nn.Conv2d(c2, 4 * 3, 3, padding=1, bias=False)
        self.style_encoder = MagentaStyleEncoder({n: (ch, group_size(c, ch), k) for n, ch in channels.items()})

    def _conv_din(self, ctx: DINContext, name: str, x: torch.Tensor, shuffle: bool = False) -> torch.Tensor:
        conv = self.convs[name]
        # conv_depth_to_space == pixel_shuffle(conv(x)), without F.pixel_shuffle's slow channels-last copy
        x = conv_depth_to_space(x, conv.weight, 1) if shuffle else conv(x)
        return self.apply_din(ctx, name, x)

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self.contract(x)

    def decode(self, x: torch.Tensor, ctx: DINContext) -> torch.Tensor:
        for i in range(1, self.config.res_blocks + 1):
            if self.config.block == "dense":
                x = x + self._conv_din(ctx, f"res{i}b", F.relu(self._conv_din(ctx, f"res{i}a", x)))
            else:
                x = x + self._conv_din(ctx, f"res{i}a", x)
        x = F.relu(self._conv_din(ctx, "up2", x, shuffle=True))
        return torch.sigmoid(self._conv_din(ctx, "out", x, shuffle=True))

    @property
    def style_size(self) -> int:
        return self.config.style_size

    @property
    def content_code_size(self) -> int:
        return PREDICTOR_SIZE


@torch.no_grad()
def from_teacher(teacher: StyleTransferNet, config: DINMobileNetConfig | None = None,
                 blocks: list[int] | None = None) -> DINMobileNet:
    """A student that starts from din-magenta's own layers: the style predictor, and for every level whose
    shape matches, its conv and its weight/bias nets (student res block i takes the teacher's ``blocks[i]``,
    default evenly spaced; ``up2`` and the final 3-channel ``out`` level's nets by name). The contract convs and
    the full-size head are new (the teacher's are 9x9 at full size), so the student is not yet the teacher's
    function: distillation (configs/din-mobilenet-distill.toml) closes the gap."""
    student = DINMobileNet(config)
    c = student.config
    n_teacher = teacher.config.res_blocks
    blocks = blocks or [round(1 + i * (n_teacher - 1) / max(1, c.res_blocks - 1)) for i in range(c.res_blocks)]
    pairs = {"up2": "up2", "out": "out"}
    for i, j in enumerate(blocks, start=1):
        for s in ("ab" if c.block == "dense" else "a"):
            pairs[f"res{i}{s}"] = f"res{j}{s}"
    enc, tenc = student.style_encoder, teacher.style_encoder
    enc.predictor.load_state_dict(tenc.predictor.state_dict())
    for mine, theirs in pairs.items():
        for nets, tnets in ((enc.weight_nets, tenc.weight_nets), (enc.bias_nets, tenc.bias_nets)):
            if nets[mine].weight.shape == tnets[theirs].weight.shape:
                nets[mine].load_state_dict(tnets[theirs].state_dict())
        conv, tconv = student.convs[mine], teacher.convs[theirs]
        if mine == "up2":
            conv.weight.copy_(subpixel_kernel(tconv.weight))
        elif isinstance(conv, nn.Conv2d) and conv.weight.shape == tconv.weight.shape:
            conv.weight.copy_(tconv.weight)
    student.pretrained = PretrainedInfo(notes={"init": f"from_teacher(blocks={blocks})"})
    return student.eval()
