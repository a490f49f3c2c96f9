"""din-magenta: Magenta's arbitrary-stylization network (Ghiasi et al. 2017) written as a DIN model.

Its transfer network normalises with conditional instance norm: after each of 13 convs, instance norm,
then a per-channel scale and shift that are linear maps of a 100-d style vector. That is DIN with a 1x1
depthwise dynamic kernel (the AdaIN special case), so the network is a DIN model as it stands:

content -> 9x9 conv (8) -> 3x3 s2 (16) -> 3x3 s2 (32)                      contract, style-free
        -> 5 x [conv, DIN, ReLU, conv, DIN] + skip                           at 1/4
        -> up, conv (16), DIN, ReLU -> up, conv (8), DIN, ReLU -> 9x9 conv (3), DIN, sigmoid

Style side: Magenta's MobileNetV2 style predictor (style image -> 100-d vector), then per DIN level a
linear "weight net" (vector -> kernel) and "bias net" (vector -> bias). Both sides carry Magenta's trained
weights (Apache-2.0, converted by ``tools/convert_magenta.py``), so the model starts as a trained one.

What ``alpha`` blends depends on the weights (config ``alpha``):
- "code" (converted weights): Magenta never ran its network un-normalised, so alpha < 1 moves the style code
  towards the code of the *average photo* (``neutral_vector``, the mean predictor vector of the training
  photos), where the network paints a photo-like picture; alpha=0 is that picture, not the photo.
- "content": alpha < 1 moves the style code towards the code of the *content image itself* (Magenta's own
  interpolation, Ghiasi et al. 2017). It is DIN's analogue of AdaIN's alpha: AdaIN(c, c) = c, and a network
  that restyles a photo with the photo's own code is asked for the photo back (weights fine-tuned for it:
  configs/din-magenta-alpha-content.toml). Every alpha stays on the codes the network was trained on. Each
  image's code is read once from the whole image, so all its tiles share it (each frame of a video its own).
- "features": DIN's own alpha, each level's output blended with its input. For a 1x1 depthwise DIN that is
  conditional instance norm whose scale and shift move from the style's towards the features' own, so alpha=0
  runs the network un-normalised: weights fine-tuned for it (configs/din-magenta-alpha0.toml) give the photo
  back. A converted model can learn it: instance norm ignores the scale of the conv before it, so rescaling
  those convs (``calibrate_unnormalised``) costs alpha=1 nothing. Its mid alphas were never right (green casts).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.din import identity_kernel, pad_same
from .base import DINContext, StyleTransferNet
from .blocks import Conv
from .levels import make_din
from .magenta_predictor import PREDICTOR_SIZE, VECTOR_SIZE, MagentaStylePredictor
from .style import DINSpec
from .stylecode import StyleCode


@dataclass
class DINMagentaConfig:
    widths: tuple[int, int, int] = (8, 16, 32)  # channels at 1, 1/2, 1/4
    res_blocks: int = 5
    style_size: int = 256  # the predictor was trained on 256x256 styles (it always sees that size)
    style_encoder: str = "magenta-mobilenet-v2"  # recorded in model files; its weights are in the file
    # Magenta's own DIN is 1x1 depthwise; wider kernels and channel groups are the DIN paper's generalisation
    # (``widen`` turns a converted model into one that starts as exactly the same network)
    din_kernel: int = 1
    din_group_size: int = 1  # input channels per group (1 = depthwise); a level with fewer channels uses fewer
    deformable: bool = False
    alpha: str = "code"  # what alpha blends: "code" (neutral code), "content" (the content's code) or "features"


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
        self.contract = nn.Sequential(Conv(3, c1, 9), Conv(c1, c2, stride=2), Conv(c2, c4, stride=2))
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
        # mean style vector of photos: alpha=0's code when alpha blends codes (zeros until converted weights fill it)
        self.register_buffer("neutral_vector", torch.zeros(VECTOR_SIZE))

    def _conv_din(self, ctx: DINContext, name: str, x: torch.Tensor) -> torch.Tensor:
        conv = self.convs[name]
        return self.apply_din(ctx, name, conv(pad_same(x, conv.kernel_size[0])))

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self.contract(x)

    def decode(self, x: torch.Tensor, ctx: DINContext) -> torch.Tensor:
        for i in range(1, self.config.res_blocks + 1):
            x = x + self._conv_din(ctx, f"res{i}b", F.relu(self._conv_din(ctx, f"res{i}a", x)))
        x = F.relu(self._conv_din(ctx, "up2", F.interpolate(x, scale_factor=2.0, mode="nearest")))
        x = F.relu(self._conv_din(ctx, "up1", F.interpolate(x, scale_factor=2.0, mode="nearest")))
        return torch.sigmoid(self._conv_din(ctx, "out", x))

    def neutral_code(self) -> StyleCode:
        return StyleCode(self.style_encoder.from_vector(self.neutral_vector[None]))

    @property
    def content_code_size(self) -> int:
        return PREDICTOR_SIZE  # the predictor's training size, whatever the model's style_size


@torch.no_grad()
def calibrate_unnormalised(model: DINMagenta, photos: torch.Tensor) -> DINMagenta:
    """Rescale each conv before a DIN level so that, with alpha=0 (no normalisation), its output channels have
    the spread the styles' scales give them at alpha=1 (the mean |scale| over the photos' own codes).
    Instance norm ignores a positive per-channel scale of its input, so alpha=1 is unchanged (tested); a
    converted network, whose alpha=0 output is flat grey (pixel std ~0.007 on photos), starts its alpha=0
    fine-tune from a picture with contrast instead. Level by level, in decode order, on ``photos`` (B, 3, H, W)."""
    if model.config.din_kernel != 1 or model.config.din_group_size != 1 or model.config.alpha != "features":
        raise ValueError("calibrate_unnormalised takes a model with 1x1 depthwise DIN kernels and alpha 'features'")
    code = model.encode_style(photos)
    for name in level_names(model.config.res_blocks):
        target = code[f"{name}.weight"].abs().mean(0).flatten()
        seen = {}
        hook = model.convs[name].register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
        try:
            model.stylize(photos, code, alpha=0.0)
        finally:
            hook.remove()
        spread = seen["out"].std((0, 2, 3)).clamp_min(1e-8)
        model.convs[name].weight.mul_((target / spread).view(-1, 1, 1, 1))
    return model


def widen(model: DINMagenta, kernel: int = 3, group_size: int = 4, deformable: bool = False) -> DINMagenta:
    """``model`` with k x k grouped (optionally deformable) DIN kernels, computing exactly what it computes:
    each level's old 1x1 depthwise map becomes the centre tap of the channel's own input in its group, every
    other tap starts at zero (and deformable offsets start at zero), so fine-tuning starts from the same network."""
    if model.config.din_kernel != 1 or model.config.din_group_size != 1:
        raise ValueError("widen takes a model with 1x1 depthwise DIN kernels")
    cfg = dataclasses.replace(model.config, din_kernel=kernel, din_group_size=group_size, deformable=deformable)
    wide = DINMagenta(cfg)
    state = {k: v for k, v in model.state_dict().items() if ".weight_nets." not in k}
    missing, _ = wide.load_state_dict(state, strict=False)
    with torch.no_grad():
        for name, net in wide.style_encoder.weight_nets.items():
            c, cg, k = wide.style_encoder.shapes[name]
            old = model.style_encoder.weight_nets[name]
            net.weight.copy_(_centre_taps(old.weight, cg, k).reshape(-1, VECTOR_SIZE))
            net.bias.copy_(_centre_taps(old.bias, cg, k).reshape(-1))
    unexpected = [m for m in missing if ".weight_nets." not in m and ".offset_" not in m]
    if unexpected:
        raise ValueError(f"widen: weights left unset: {unexpected[:4]}")
    wide.info = dict(getattr(model, "info", {}) or {})
    return wide.eval()


def _centre_taps(per_channel: torch.Tensor, cg: int, k: int) -> torch.Tensor:
    """(C, ...) 1x1 depthwise values -> (C, cg, k, k, ...): each value on ``identity_kernel``'s tap (the centre
    of the channel's own input within its group), zero elsewhere."""
    c, rest = per_channel.shape[0], per_channel.shape[1:]
    eye = identity_kernel(c, c // cg, k).to(per_channel)
    return eye.view(c, cg, k, k, *[1] * len(rest)) * per_channel.view(c, 1, 1, 1, *rest)
