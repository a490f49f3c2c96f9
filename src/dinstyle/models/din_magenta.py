"""din-magenta: Magenta's arbitrary-stylization network (Ghiasi et al. 2017) written as a DIN model.

Its transfer network normalises with conditional instance norm: after each of 13 convs, instance norm,
then a per-channel scale and shift that are linear maps of a 100-d style vector. That is DIN with a 1x1
depthwise dynamic kernel (the AdaIN special case), so the network is a DIN model as it stands:

content -> 9x9 conv (8) -> 3x3 s2 (16) -> 3x3 s2 (32)                      contract, style-free
        -> 5 x [conv, DIN, ReLU, conv, DIN] + skip                           at 1/4
        -> up, conv (16), DIN, ReLU -> up, conv (8), DIN, ReLU -> 9x9 conv (3), DIN, sigmoid

Style side: Magenta's MobileNetV2 style predictor (style image -> 100-d vector), then per DIN level a
linear "weight net" (vector -> kernel) and "bias net" (vector -> bias). Both sides carry Magenta's trained
weights (Apache-2.0, converted by ``dinstyle.convert.magenta_weights``), so the model starts as a trained one.

Alpha < 1 moves the style code towards the code of the *content image itself* (``models.base``; Magenta's own
interpolation, Ghiasi et al. 2017). It is DIN's analogue of AdaIN's alpha: AdaIN(c, c) = c, and a network that
restyles a photo with the photo's own code is asked for the photo back (the bundled weights are fine-tuned for
it: configs/din-magenta-alpha-content.toml). Every alpha stays on the codes the network was trained on. Each
image's code is read once from the whole image, so all its tiles share it (each frame of a video its own).
Two earlier policies are retired (``models.legacy``): towards an average photo's code (the converted weights
as first shipped: alpha 0 gave a photo-like picture, not the photo) and DIN's own feature blend (the network
run un-normalised at alpha 0: its mid alphas turned green).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.din import pad_same
from ..layers.fast_conv import same_conv_s2d, upsample_conv3x3
from .base import DINContext, StyleTransferNet
from .blocks import Conv, FullSizeContract
from .levels import make_din
from .magenta_predictor import PREDICTOR_SIZE, VECTOR_SIZE, MagentaStylePredictor
from .style import DINSpec


@dataclass
class DINMagentaConfig:
    widths: tuple[int, int, int] = (8, 16, 32)  # channels at 1, 1/2, 1/4
    res_blocks: int = 5
    style_size: int = 256  # the predictor was trained on 256x256 styles (it always sees that size)
    style_encoder: str = "magenta-mobilenet-v2"  # recorded in model files; its weights are in the file
    # Magenta's own DIN is 1x1 depthwise; wider kernels and channel groups are the DIN paper's generalisation
    # (``convert.widen`` turns a converted model into one that starts as exactly the same network)
    din_kernel: int = 1
    din_group_size: int = 1  # input channels per group (1 = depthwise); a level with fewer channels uses fewer
    deformable: bool = False


def group_size(config: DINMagentaConfig, channels: int) -> int:
    return math.gcd(config.din_group_size, channels)


def level_names(res_blocks: int) -> list[str]:
    """The DIN levels in the order the decoder calls them."""
    return [f"res{i}{ab}" for i in range(1, res_blocks + 1) for ab in "ab"] + ["up2", "up1", "out"]


class MagentaStyleEncoder(nn.Module):
    """Style image -> 100-d vector -> per level a (C, C/g, k, k) kernel (Magenta's: (C, 1, 1, 1), depthwise)
    and a (C,) bias, each a linear map of the vector."""

    def __init__(self, shapes: dict[str, tuple[int, int, int]]):
        super().__init__()
        self.shapes = shapes  # level -> (channels, input channels per group, kernel size)
        self.predictor = MagentaStylePredictor()
        self.weight_nets = nn.ModuleDict({n: nn.Linear(VECTOR_SIZE, c * cg * k * k) for n, (c, cg, k) in shapes.items()})
        self.bias_nets = nn.ModuleDict({n: nn.Linear(VECTOR_SIZE, c) for n, (c, _, _) in shapes.items()})

    def taps_of(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """What training caches per style: the frozen predictor's vector."""
        # The predictor sees every style at its training size, 256x256 (the API has already resized the long
        # side to the model's style size, 256): TF "SAME" padding depends on the size's parity, and a fixed
        # size keeps the exported graph right for every style size.
        size = (PREDICTOR_SIZE, PREDICTOR_SIZE)
        return {"vector": self.predictor(F.interpolate(style, size=size, mode="bilinear", align_corners=False))}

    def from_taps(self, taps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.from_vector(taps["vector"])

    def from_vector(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        code = {}
        for name, net in self.weight_nets.items():
            c, cg, k = self.shapes[name]
            code[f"{name}.weight"] = net(v).view(v.shape[0], c, cg, k, k)
            code[f"{name}.bias"] = self.bias_nets[name](v)
        return code

    def forward(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.from_taps(self.taps_of(style))


class DINMagenta(StyleTransferNet):
    arch = "din-magenta"
    pad_multiple = 4
    style_size_matters = False  # the predictor always sees 256x256

    def __init__(self, config: DINMagentaConfig | None = None):
        super().__init__(config or DINMagentaConfig())
        c1, c2, c4 = self.config.widths
        self.contract = FullSizeContract(Conv(3, c1, 9), Conv(c1, c2, stride=2), Conv(c2, c4, stride=2))
        names = level_names(self.config.res_blocks)
        channels = {n: c4 for n in names[:-3]} | {"up2": c2, "up1": c1, "out": 3}
        k = self.config.din_kernel
        specs = {n: DINSpec(n, c, k, c // group_size(self.config, c), 0) for n, c in channels.items()}
        self.dins = nn.ModuleDict({n: make_din(spec, self.config.deformable) for n, spec in specs.items()})
        # The convs before a DIN have no bias: instance norm would remove it.
        self.convs = nn.ModuleDict({n: nn.Conv2d(c4, c4, 3, bias=False) for n in names[:-3]})
        self.convs["up2"] = nn.Conv2d(c4, c2, 3, bias=False)
        self.convs["up1"] = nn.Conv2d(c2, c1, 3, bias=False)
        self.convs["out"] = nn.Conv2d(c1, 3, 9, bias=False)
        self.style_encoder = MagentaStyleEncoder({n: (c, group_size(self.config, c), k) for n, c in channels.items()})

    def _conv_din(self, ctx: DINContext, name: str, x: torch.Tensor) -> torch.Tensor:
        conv = self.convs[name]
        return self.apply_din(ctx, name, conv(pad_same(x, conv.kernel_size[0])))

    # The full-size convs run as their exact half-size rewrites (layers.fast_conv; issue 24): the same weights
    # and the same map, 2-3x faster on a CPU.
    def _up_conv_din(self, ctx: DINContext, name: str, x: torch.Tensor) -> torch.Tensor:
        """Nearest 2x upsample, then ``name``'s 3x3 conv and DIN."""
        return self.apply_din(ctx, name, upsample_conv3x3(x, self.convs[name].weight))

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self.contract(x)

    def decode(self, x: torch.Tensor, ctx: DINContext) -> torch.Tensor:
        for i in range(1, self.config.res_blocks + 1):
            x = x + self._conv_din(ctx, f"res{i}b", F.relu(self._conv_din(ctx, f"res{i}a", x)))
        x = F.relu(self._up_conv_din(ctx, "up2", x), inplace=True)  # a fresh map: in place saves a copy
        x = F.relu(self._up_conv_din(ctx, "up1", x), inplace=True)
        return torch.sigmoid(self.apply_din(ctx, "out", same_conv_s2d(x, self.convs["out"].weight)))

    @property
    def style_size(self) -> int:
        return self.config.style_size

    @property
    def content_code_size(self) -> int:
        return PREDICTOR_SIZE  # the predictor's training size, whatever the model's style_size
