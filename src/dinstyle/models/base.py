"""What every style-transfer model offers: encode a style once, stylize many contents with it."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Backbone
from .stylecode import StyleCode

# stats_fn(level_name, pre-norm features) -> (mean, std) to use instead of the features' own, or None.
StatsFn = Callable[[str, torch.Tensor], Optional[tuple[torch.Tensor, torch.Tensor]]]

# What alpha < 1 blends, by a model config's ``alpha`` (a config without one: "features"):
# - "features": DIN's own alpha, each level's output blended with its input features (0 = no DIN at all);
# - "content": the style code moves towards the code of the content image itself (AdaIN(c, c) = c in DIN
#   form), then the network runs at full strength: every alpha stays on codes the network was trained on;
# - "code": towards the model's neutral code (``neutral_code``; din-magenta's converted weights).
ALPHA_MODES = ("features", "content", "code")


@dataclass(frozen=True)
class DINContext:
    """What every DIN level of one ``stylize`` call needs, passed down explicitly (no state on the model,
    so calls are re-entrant). ``alpha`` may be a 0-d tensor: export keeps it a graph input."""

    codes: Sequence[StyleCode]
    masks: Optional[Sequence[torch.Tensor]] = None
    alpha: Union[float, torch.Tensor] = 1.0
    stats_fn: Optional[StatsFn] = None
    stroke: Union[float, torch.Tensor, None] = None


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right so H and W are multiples of m (reflect; replicate for tiny images)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class StyleTransferNet(nn.Module):
    """Base class. Subclasses set ``arch``, ``config``, ``pad_multiple``, ``style_encoder`` and ``dins``
    (a ModuleDict of DIN layers) and implement ``encode_content(x)`` and ``decode(feats, ctx)``, calling
    ``apply_din(ctx, level, features)`` at each DIN level in a fixed order.

    Images are RGB float tensors in [0, 1], shape (B, 3, H, W); outputs are unclamped.
    """

    arch: str = ""
    pad_multiple: int = 8
    # False where the style encoder sees every style at one fixed size (stroke controls then do nothing)
    style_size_matters: bool = True

    def __init__(self, config):
        super().__init__()
        self.config = config
        if self.alpha_mode not in ALPHA_MODES:
            raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {self.alpha_mode!r}")
        if self.alpha_mode == "code" and type(self).neutral_code is StyleTransferNet.neutral_code:
            self.neutral_code()  # raises: say so now, not at the first alpha < 1

    @property
    def alpha_mode(self) -> str:
        return getattr(self.config, "alpha", "features")

    @property
    def content_code_size(self) -> int:
        """The square size a content image is read at for its own code (alpha "content")."""
        return self.config.style_size

    @property
    def stroke_control(self) -> bool:
        """Whether --stroke-size / --stroke-map change the strokes: through the style size, or through
        deformable offsets (which the stroke value scales)."""
        return self.style_size_matters or bool(getattr(self.config, "deformable", False))

    # ------------------------------------------------------------------ style side (once per style)
    def encode_style(self, style: torch.Tensor) -> StyleCode:
        return StyleCode(self.style_encoder(style), {"arch": self.arch})

    # ------------------------------------------------------------------ content side (per image)
    def codes_at_alpha(self, codes: Sequence[StyleCode], alpha: float | torch.Tensor, content: torch.Tensor | None = None,
                       anchor: StyleCode | None = None) -> tuple[list[StyleCode], float | torch.Tensor]:
        """The codes and alpha that ``stylize`` runs with (``ALPHA_MODES``): with alpha "features" both pass
        through; with "content" or "code", alpha < 1 returns the codes blended towards ``anchor`` (default
        ``alpha_anchor(content)``) and alpha 1. A caller that tiles an image, or runs it at two alphas, reads
        the anchor once from the whole image and passes it."""
        if self.alpha_mode == "features" or (not torch.is_tensor(alpha) and alpha == 1.0):
            return list(codes), alpha
        anchor = self.alpha_anchor(content) if anchor is None else anchor
        # one line rather than stylecode.blend: export needs a tensor alpha to stay a tensor
        return [StyleCode({k: anchor[k].to(v) + alpha * (v - anchor[k].to(v)) for k, v in c.tensors.items()})
                for c in codes], 1.0

    def alpha_anchor(self, content: torch.Tensor) -> StyleCode | None:
        """The code that alpha 0 blends to (None with alpha "features": nothing to read)."""
        if self.alpha_mode == "features":
            return None
        return self.neutral_code() if self.alpha_mode == "code" else self.content_code(content)

    def content_code(self, content: torch.Tensor) -> StyleCode:
        """The content image's own style code, read from the whole image at ``content_code_size`` squared."""
        p = next(self.parameters())  # resized where it lies, then moved: a huge image never goes to the GPU
        size = (self.content_code_size, self.content_code_size)
        # ONNX (opset 17) has no antialiased resize: the exported graph reads a plain bilinear resize
        small = F.interpolate(content.float(), size=size, mode="bilinear",
                              antialias=not torch.onnx.is_in_onnx_export(), align_corners=False)
        return StyleCode(self.style_encoder(small.to(p.device, p.dtype)))

    def neutral_code(self) -> StyleCode:
        raise ValueError(f"{self.arch} has no neutral code: alpha 'code' needs one (din-magenta's converted weights)")

    def stylize(self, content: torch.Tensor, code: StyleCode | Sequence[StyleCode], alpha: float | torch.Tensor = 1.0,
                masks: Sequence[torch.Tensor] | None = None, stats_fn: StatsFn | None = None,
                stroke: float | torch.Tensor | None = None) -> torch.Tensor:
        """Restyle ``content`` with one code, or several codes each weighted by a soft mask (B|1, 1, H, W)
        that sums to one over the codes. ``alpha`` in [0, 1] blends DIN's output with its input features
        (0 = plain reconstruction of the content). ``stroke`` (a number or a (B|1, 1, H, W) map of
        multipliers, 1 = as trained) reaches each DIN layer's ``conv``; deformable DIN scales its sampling
        offsets with it, plain DIN ignores it. Any H, W works: padded, then cropped back. With config alpha
        "content" or "code", alpha blends codes instead (``codes_at_alpha``; a caller that tiles the image
        blends them first, from the whole image)."""
        codes, alpha = self.codes_at_alpha([code] if isinstance(code, StyleCode) else code, alpha, content)
        if masks is not None and len(masks) != len(codes):
            raise ValueError(f"{len(masks)} masks for {len(codes)} styles")
        x, (h, w) = pad_to_multiple(content, self.pad_multiple)
        if masks is not None:
            masks = [pad_to_multiple(m, self.pad_multiple)[0] for m in masks]
        if torch.is_tensor(stroke):
            stroke = pad_to_multiple(stroke, self.pad_multiple)[0]
        alpha = alpha if torch.is_tensor(alpha) else float(alpha)
        ctx = DINContext(codes, masks, alpha, stats_fn, stroke)
        return self.decode(self.encode_content(x), ctx)[..., :h, :w]

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        return self.stylize(content, self.encode_style(style), alpha)

    def apply_din(self, ctx: DINContext, name: str, x: torch.Tensor) -> torch.Tensor:
        """DIN level ``name`` (``layers.din.DIN.forward`` owns the operation) with the codes, masks, alpha,
        statistics and stroke of ``ctx``."""
        stats = ctx.stats_fn(name, x) if ctx.stats_fn is not None else None
        return self.dins[name](x, [c[f"{name}.weight"] for c in ctx.codes], [c[f"{name}.bias"] for c in ctx.codes],
                               ctx.masks, ctx.alpha, stats, ctx.stroke)

    def encode_content(self, x: torch.Tensor):
        raise NotImplementedError

    def decode(self, feats, ctx: DINContext) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence helpers
    def frozen_prefixes(self) -> list[str]:
        """State-dict prefixes of frozen backbones: rebuilt from their own weight files, never saved."""
        return [n + "." for n, m in self.named_modules() if isinstance(m, Backbone) and n]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        frozen = tuple(self.frozen_prefixes())
        return {k: v for k, v in self.state_dict().items() if not k.startswith(frozen)}

    def describe(self) -> dict:
        return {"arch": self.arch, "config": asdict(self.config)}
