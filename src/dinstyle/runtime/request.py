"""One request: everything a content pass needs besides the model and the image, checked once.

``Stylizer.stylize``, video frames, the server and datasets each build one ``RunRequest`` where a call enters the
library (the API's user-level options become codes, masks and a scale there), and ``runner.run_model`` hands it
down unchanged: to the restore, the stroke scale, the tiles and, through ``model.stylize``, the DIN levels.
Nothing below re-checks a control, and no layer passes controls one by one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import torch

from ..defaults import DITHER, check_alpha, check_stroke_size
from ..errors import Cancelled, UsageError
from ..io.images import DEFAULT_MAX_PIXELS
from ..models.stylecode import StyleCode

# max_pixels_untiled None (the default): an image runs in one piece when the memory takes it, else in tiles as
# large as the memory allows (``runtime.memory``: the model's measured bytes per pixel against the available
# memory). A number: above that many pixels an image is tiled, in tiles (halo included) of at most that many.
DEFAULT_MAX_PIXELS_UNTILED = None
MIN_TILE = 128  # the smallest tile the out-of-memory fallback goes down to
SMALLEST_TILE = 32  # the smallest tile a caller may ask for (a tile is mostly halo below that)

Progress = Callable[[int, int], None]
# smooth(level, mean, std) -> (mean, std): replaces each DIN level's statistics (video: smoothed over time)
Smooth = Callable[[str, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class RunRequest:
    """What to run on one image (or one batch of frames).

    codes: one style code, or one per mask (each (1|B)-batched, already blended and checked by the API).
    alpha: strength in [0, 1]; what it blends is the model's alpha policy (``models.base``).
    masks: one soft (B|1, 1, H, W) mask per code, summing to one (regions), or None.
    restore: with alpha < 1, add back (1 - alpha) x what the network loses of the photo (``runner``).
    scale: the network runs on the image shrunk by this factor (``runtime.scale``: stroke size x size / reference).
    scale_map: (B|1, 1, H, W) in [0, 1]: per pixel a mix of passes at ``scale x SMALL`` (0) and ``x LARGE`` (1).
    detail_scale: the native pass's detail finer than this is added back after a scaled pass (None: ``scale``);
        the API sets the scale of stroke size 1, so larger strokes coarsen the picture, not just the colours.
    stroke: multiplier of deformable DIN's sampling offsets (a number or a map; plain DIN ignores it).
    dither: sigma of the fixed noise added to every pass's input, so flat areas get even texture (``defaults``).
    tile / max_pixels_untiled: force tiles of this core size / tile above this many pixels (None: when the
        memory requires it, ``runtime.memory``).
    progress(done, total), cancel() -> bool (checked between DIN levels and tiles), smooth (video).
    """

    codes: Sequence[StyleCode]
    alpha: Union[float, torch.Tensor] = 1.0
    masks: Optional[Sequence[torch.Tensor]] = None
    restore: bool = True
    scale: float = 1.0
    scale_map: Optional[torch.Tensor] = None
    detail_scale: Optional[float] = None
    stroke: Union[float, torch.Tensor, None] = None
    dither: float = DITHER
    tile: Optional[int] = None
    max_pixels_untiled: Optional[int] = DEFAULT_MAX_PIXELS_UNTILED
    progress: Optional[Progress] = field(default=None, compare=False)
    cancel: Optional[Callable[[], bool]] = field(default=None, compare=False)
    smooth: Optional[Smooth] = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "codes", [self.codes] if isinstance(self.codes, StyleCode) else list(self.codes))
        if not self.codes:
            raise UsageError("at least one style is needed")
        if not torch.is_tensor(self.alpha):
            check_alpha(self.alpha)
        if self.masks is not None and len(self.masks) != len(self.codes):
            raise UsageError(f"{len(self.masks)} masks for {len(self.codes)} styles")
        _check_positive("scale", self.scale)
        if self.detail_scale is not None:
            _check_positive("detail_scale", self.detail_scale)
        check_dither(self.dither)
        check_tiling(self.tile, self.max_pixels_untiled)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled")


def _check_positive(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a positive number, got {value}")


def check_dither(dither) -> None:
    if not (isinstance(dither, (int, float)) and math.isfinite(dither) and dither >= 0):
        raise UsageError(f"dither must be 0 (off) or a positive number, got {dither}")


def check_tiling(tile, max_pixels_untiled) -> None:
    if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < SMALLEST_TILE):
        raise UsageError(f"tile must be an integer >= {SMALLEST_TILE}, got {tile}")
    if max_pixels_untiled is not None and not (isinstance(max_pixels_untiled, int)
                                               and not isinstance(max_pixels_untiled, bool) and max_pixels_untiled > 0):
        raise UsageError(f"max_pixels_untiled must be a positive integer or None (from the memory), "
                         f"got {max_pixels_untiled}")


def split_progress(progress: Optional[Progress], parts: int) -> list[Optional[Progress]]:
    """``parts`` callbacks for consecutive passes of one call, reporting to ``progress`` as one count."""
    if progress is None:
        return [None] * parts
    return [lambda d, n, i=i: progress(i * n + d, parts * n) for i in range(parts)]


@dataclass(frozen=True)
class StyleOptions:
    """What a user asks of one stylization, before any image is read: the CLI's flags, the server's form
    fields, a video's or a dataset's settings all translate into this, and it is checked here, once.
    ``Stylizer.stylize`` turns it, with the image and the styles, into a ``RunRequest``.

    alpha, restore: strength, and whether alpha 0 gives the photo back (``RunRequest``).
    style_weights: with several styles, their blend weights (not with ``mask``).
    style_size: long side the style image is encoded at (None: the model's own).
    preserve_color: keep the photo's colours. mask: one style per region (a label image).
    stroke_size: 1 = the model's look at its reference size, whatever the photo's size; 2 = strokes twice as
        large. stroke_map: a grayscale image (black = small strokes, white = large) or "auto" (from the photo).
    dither: sigma of the fixed noise every pass's input gets, so flat areas take even texture (0 = off).
    tile, max_pixels_untiled, max_pixels: tiling (``max_pixels_untiled`` None: tiles only when the memory
        requires them) and the pixel guard. progress, cancel: as in ``RunRequest``.
    """

    alpha: float = 1.0
    restore: bool = True
    style_weights: Optional[Sequence[float]] = None
    style_size: Optional[int] = None
    preserve_color: bool = False
    mask: object = None
    stroke_size: float = 1.0
    stroke_map: object = None
    dither: float = DITHER
    tile: Optional[int] = None
    max_pixels_untiled: Optional[int] = DEFAULT_MAX_PIXELS_UNTILED
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS  # the pixel guard on the photo, mask and stroke map (None: off)
    progress: Optional[Progress] = field(default=None, compare=False)
    cancel: Optional[Callable[[], bool]] = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "stroke_size", check_stroke_size(self.stroke_size))
        if self.style_weights is not None:
            if self.mask is not None:
                raise UsageError("style weights and a mask exclude each other")
            object.__setattr__(self, "style_weights", tuple(float(w) for w in self.style_weights))
        if self.style_size is not None and (not isinstance(self.style_size, int) or self.style_size < 16):
            raise UsageError(f"style size must be an integer >= 16, got {self.style_size}")
        check_dither(self.dither)
        if isinstance(self.stroke_map, str) and self.stroke_map != "auto" and not self.stroke_map:
            raise UsageError("stroke map: give a file or 'auto'")
        check_tiling(self.tile, self.max_pixels_untiled)

    def check_styles(self, count: int) -> None:
        """Checks that need the number of styles."""
        if count < 1:
            raise UsageError("at least one style is needed")
        if self.style_weights is not None and len(self.style_weights) != count:
            raise UsageError(f"{len(self.style_weights)} style weights for {count} styles: give one per style")
