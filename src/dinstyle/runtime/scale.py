"""Stroke scale: the same painting at any resolution, and ``--stroke-size`` on every model.

A content network paints strokes of a fixed size in *its input's* pixels, so on a photo twice as large the
strokes are half as large relative to the picture (a 12 MP photo shows the style as grain), and a style
encoder that sees every style at one size (din-magenta's predictor) cannot be asked for bigger ones.

So the network runs on the photo resized by ``1 / scale`` and its output is brought back to full size,
with the photo's own luminance detail (what a resize by ``detail`` removes) added back, so edges stay sharp:

    scale  = stroke_size x max(1, long side / reference size)      (``scale_for``)
    detail = min(scale, the scale at stroke size 1)
    out    = up(net(down(x))) + (Y(x) - Y(up(down_detail(x))))     (``run_scaled``; Y = luminance)

The detail is that of stroke size 1, not of ``scale``: adding back everything the larger resize removed put
the photo's fine texture over the big strokes, and the strokes measured barely larger (examples/pier.jpg,
stroke size 3: wavelength 1.04x of size 1's with it, 1.50x without; an exact 3x magnification of size 1's
output scores 1.54x: ``benchmarks/pilots/stroke_detail.py``, ``benchmarks/stroke_scale.py``).

At stroke size 1 a photo up to the reference size runs as it is; a larger one gets the painting it would
get at the reference size, at a cost that no longer grows with the photo. Pilots (docs/MODEL_CARD.md,
"Strokes"): dilated (a trous) evaluation, which runs the network on the ``scale`` x ``scale`` polyphase
sub-images and interleaves them, was as sharp but left a periodic grid where the phases disagree; a guided-
filter upsampling lost the strokes' texture in flat regions. Luminance-only detail keeps the style's colours
(and ``--preserve-color`` works on the result as before).

A stroke map mixes two passes, at ``scale x SMALL`` and ``scale x LARGE``, pixel by pixel (``runner``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..defaults import scaled_size  # the rule (``scale_for``) lives there too, shared with dinstyle.lite

LUMA = (0.299, 0.587, 0.114)

# run(content, masks) -> output at content's size: one pass of the content network (tiled or not)
Pass = Callable[[torch.Tensor, "Sequence[torch.Tensor] | None"], torch.Tensor]


def resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bicubic, antialiased when shrinking; computed in float32 (half precision resizes poorly on CPUs)."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x.float(), size=hw, mode="bicubic", antialias=True, align_corners=False).to(x.dtype)


def luminance(x: torch.Tensor) -> torch.Tensor:
    return (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def run_scaled(run: Pass, x: torch.Tensor, scale: float, masks: Sequence[torch.Tensor] | None = None,
               detail_scale: float | None = None) -> torch.Tensor:
    """``run`` on ``x`` shrunk by ``scale`` (enlarged when < 1), brought back to ``x``'s size with ``x``'s own
    luminance detail finer than ``min(scale, detail_scale)`` added back (none when that is <= 1). Masks are
    resized along. ``scale`` 1 is ``run(x, masks)`` itself."""
    if scale == 1.0:
        return run(x, masks)
    h, w = x.shape[-2:]
    small_hw = scaled_size(h, w, scale)
    small = resize(x, small_hw).clamp(0, 1)
    small_masks = None if masks is None else [resize(m, small_hw).clamp(0, 1) for m in masks]
    y = resize(run(small, small_masks).float(), (h, w))
    d = scale if detail_scale is None else min(scale, detail_scale)
    if d <= 1.0:
        return y
    coarse = small if d == scale else resize(x, scaled_size(h, w, d)).clamp(0, 1)
    detail = luminance(x.float()) - luminance(resize(coarse, (h, w)).float())
    return y + detail.to(y.device)
