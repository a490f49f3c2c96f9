"""What every style-transfer model offers: encode a style once, stylize many contents with it.

Alpha has one meaning, on every model: alpha < 1 moves the style code towards the code of the content image
itself (``content_code``; AdaIN(c, c) = c in DIN form), then the network runs at full strength, so every alpha
stays on codes the network was trained on. Older files could ask for DIN's own feature blend ("features") or a
blend towards a stored neutral code ("code"); no shipped file did, and ``models.legacy`` refuses them."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Backbone
from ..defaults import DEFAULT_STYLE_SIZE
from ..layers.deform import DeformableDIN
from .pretrained import PretrainedInfo
from .stylecode import StyleCode

# stats_fn(level_name, pre-norm features) -> (mean, std) to use instead of the features' own, or None.
StatsFn = Callable[[str, torch.Tensor], Optional[tuple[torch.Tensor, torch.Tensor]]]



@dataclass(frozen=True)
class DINContext:
    """What every DIN level of one ``stylize`` call needs, passed down explicitly (no state on the model,
    so calls are re-entrant). Alpha is already in ``codes`` (``codes_at_alpha``): DIN has no alpha of its own."""

    codes: Sequence[StyleCode]
    masks: Optional[Sequence[torch.Tensor]] = None
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

    ``config`` holds the architecture's arguments only; what a weight file says about its weights (trained,
    its file, reference size, training notes) is ``pretrained``, set by ``models.registry`` when it loads one.
    Images are RGB float tensors in [0, 1], shape (B, 3, H, W); outputs are unclamped.
    """

    arch: str = ""  # the registry name (a variant such as din-fast-deform is its own subclass)
    pad_multiple: int = 8
    # False where the style encoder sees every style at one fixed size (stroke controls then do nothing)
    style_size_matters: bool = True
    pretrained: PretrainedInfo

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.pretrained = PretrainedInfo()

    @property
    def info(self) -> dict:
        """``pretrained`` as one flat dict (training notes, reference size, file, trained), read-only: what
        ``dinstyle info`` prints and ``save_model(info=...)`` takes back."""
        return self.pretrained.as_dict()

    @property
    def style_size(self) -> int:
        """The style long side the weights were trained with (architectures whose config says none: 512)."""
        return DEFAULT_STYLE_SIZE

    @property
    def content_code_size(self) -> int:
        """The square size a content image is read at for its own code (what alpha < 1 blends towards)."""
        return self.style_size

    @property
    def stroke_control(self) -> bool:
        """Whether --stroke-size / --stroke-map change the strokes: through the style size, or through
        deformable offsets (which the stroke value scales)."""
        return self.style_size_matters or any(isinstance(d, DeformableDIN) for d in self.dins.values())

    # ------------------------------------------------------------------ style side (once per style)
    def encode_style(self, style: torch.Tensor) -> StyleCode:
        """A style image's code (the network's own step; ``Stylizer.encode_style`` adds resizing, caching and
        checks)."""
        return StyleCode(self.style_encoder(style), {"arch": self.arch})

    # ------------------------------------------------------------------ content side (per image)
    def codes_at_alpha(self, codes: Sequence[StyleCode], alpha: float | torch.Tensor, content: torch.Tensor | None = None,
                       anchor: StyleCode | None = None) -> list[StyleCode]:
        """Alpha, the one place it is applied: the codes moved towards ``anchor`` (default
        ``content_code(content)``) by 1 - alpha; alpha 1 returns them as they are. A caller that tiles an image,
        or runs it at two alphas, reads the anchor once from the whole image and passes it."""
        if not torch.is_tensor(alpha) and alpha == 1.0:
            return list(codes)
        anchor = self.content_code(content) if anchor is None else anchor
        # one line rather than stylecode.blend: export needs a tensor alpha to stay a tensor
        return [StyleCode({k: anchor[k].to(v) + alpha * (v - anchor[k].to(v)) for k, v in c.tensors.items()})
                for c in codes]

    def content_code(self, content: torch.Tensor) -> StyleCode:
        """The content image's own style code (alpha 0's), read from the whole image at ``content_code_size``
        squared."""
        p = next(self.parameters())  # resized where it lies, then moved: a huge image never goes to the GPU
        size = (self.content_code_size, self.content_code_size)
        # ONNX (opset 17) has no antialiased resize: the exported graph reads a plain bilinear resize
        small = F.interpolate(content.float(), size=size, mode="bilinear",
                              antialias=not torch.onnx.is_in_onnx_export(), align_corners=False)
        return self.encode_style(small.to(p.device, p.dtype))

    def stylize(self, content: torch.Tensor, code: StyleCode | Sequence[StyleCode], alpha: float | torch.Tensor = 1.0,
                masks: Sequence[torch.Tensor] | None = None, stats_fn: StatsFn | None = None,
                stroke: float | torch.Tensor | None = None) -> torch.Tensor:
        """Restyle ``content`` with one code, or several codes each weighted by a soft mask (B|1, 1, H, W)
        that sums to one over the codes. ``alpha`` in [0, 1] moves the codes towards the content's own code
        (``codes_at_alpha``; a caller that tiles the image blends them first, from the whole image). ``stroke``
        (a number or a (B|1, 1, H, W) map of multipliers, 1 = as trained) reaches each DIN layer's ``conv``;
        deformable DIN scales its sampling offsets with it, plain DIN ignores it. Any H, W works: padded, then
        cropped back."""
        codes = self.codes_at_alpha([code] if isinstance(code, StyleCode) else code, alpha, content)
        if masks is not None and len(masks) != len(codes):
            raise ValueError(f"{len(masks)} masks for {len(codes)} styles")
        x, (h, w) = pad_to_multiple(content, self.pad_multiple)
        if masks is not None:
            masks = [pad_to_multiple(m, self.pad_multiple)[0] for m in masks]
        if torch.is_tensor(stroke):
            stroke = pad_to_multiple(stroke, self.pad_multiple)[0]
        ctx = DINContext(codes, masks, stats_fn, stroke)
        return self.decode(self.encode_content(x), ctx)[..., :h, :w]

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        return self.stylize(content, self.encode_style(style), alpha)

    def apply_din(self, ctx: DINContext, name: str, x: torch.Tensor) -> torch.Tensor:
        """DIN level ``name`` (``layers.din.DIN.forward`` owns the operation) with the codes, masks,
        statistics and stroke of ``ctx``."""
        stats = ctx.stats_fn(name, x) if ctx.stats_fn is not None else None
        return self.dins[name](x, [c[f"{name}.weight"] for c in ctx.codes], [c[f"{name}.bias"] for c in ctx.codes],
                               ctx.masks, stats, ctx.stroke)

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
