"""User controls that act on pixels around the model: colour preservation, region masks, stroke maps.

Conventions (also in docs/USAGE.md):

* ``preserve_color``: luminance-only transfer. The result's luma Y (BT.601) is kept and its chroma
  (Cb, Cr) is replaced by the content's, so the content's colours survive and the style supplies
  texture and light/dark structure.
* region mask: a grayscale or indexed (palette) image. Its distinct values, sorted ascending (palette
  index for indexed images, gray level otherwise), select the styles in the order given: darkest /
  lowest index = first ``--style``. It must have exactly one value per style, and the content's size
  or at least its aspect ratio (it is resized with nearest neighbour). Save masks as PNG: JPEG noise
  adds values.
* stroke map: a grayscale image, black = small strokes, white = large; resized (bilinear) to the
  content. Per pixel, weights ``1 - v`` and ``v`` mix a pass at stroke size ``SMALL x S`` with one at
  ``LARGE x S`` (``runtime.runner``); ``auto_stroke_map`` reads one from the content.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DinstyleError
from ..io.images import decode_image
from ..layers.filters import gaussian_blur, gradient_magnitude

SMALL, LARGE = 0.5, 2.0  # the stroke sizes (times --stroke-size) a stroke map mixes, black to white


def resize_long_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, C, H, W) so its long side is ``size`` (antialiased bilinear), keeping the aspect ratio."""
    h, w = x.shape[-2:]
    s = size / max(h, w)
    hw = (max(1, round(h * s)), max(1, round(w * s)))
    if hw == (h, w):
        return x
    return F.interpolate(x, size=hw, mode="bilinear", antialias=s < 1, align_corners=False)


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Stylized luma + content chroma (YCbCr, BT.601), clamped to [0, 1]."""
    r, g, b = stylized.clamp(0, 1).unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    r, g, b = content.to(stylized).unbind(1)
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1).clamp(0, 1)


def _map_array(src, label: str, max_pixels: int | None, keep_index: bool) -> np.ndarray:
    """A 2-D array of a mask/map's raw values (palette indices stay indices when ``keep_index``)."""
    if isinstance(src, (str, os.PathLike)):
        src = decode_image(src, max_pixels)
    if isinstance(src, Image.Image):
        if src.mode in ("P", "PA") and keep_index:
            return np.asarray(src.convert("P") if src.mode == "PA" else src)
        if src.mode in ("I", "I;16", "I;16B", "I;16L", "F", "L"):
            return np.asarray(src)
        return np.asarray(src.convert("L"))
    a = src.detach().cpu().numpy() if torch.is_tensor(src) else np.asarray(src)
    a = np.squeeze(a)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if a.ndim != 2:
        raise DinstyleError(f"{label}: expected a 2-D grayscale map, got shape {tuple(a.shape)}")
    return a


def _check_shape(a: np.ndarray, hw: tuple[int, int], label: str) -> None:
    mh, mw = a.shape
    h, w = hw
    if (mh, mw) != (h, w) and abs(mw / mh - w / h) > 0.01 * (w / h):
        raise DinstyleError(f"{label}: is {mw}x{mh} but the content is {w}x{h} "
                            "(a mask or map needs the content's size or aspect ratio)")


def region_masks(mask, n_styles: int, hw: tuple[int, int], label: str = "mask",
                 max_pixels: int | None = None) -> list[torch.Tensor]:
    """One (1, 1, H, W) 0/1 mask per style from a label image (see the module docstring)."""
    a = _map_array(mask, label, max_pixels, keep_index=True)
    _check_shape(a, hw, label)
    values = np.unique(a)
    if len(values) != n_styles:
        shown = ", ".join(str(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
        raise DinstyleError(f"{label}: has {len(values)} distinct values ({shown}) but {n_styles} styles "
                            "were given (one value per style; save masks as PNG, not JPEG)")
    labels = torch.from_numpy(np.searchsorted(values, a).astype(np.float32))[None, None]
    if labels.shape[-2:] != hw:
        labels = F.interpolate(labels, size=hw, mode="nearest")
    return [(labels == i).float() for i in range(n_styles)]


def gray_map(src, hw: tuple[int, int], label: str = "map", max_pixels: int | None = None) -> torch.Tensor:
    """A (1, 1, H, W) map in [0, 1] from a grayscale image/array (8-bit, 16-bit or float)."""
    raw = _map_array(src, label, max_pixels, keep_index=False)
    _check_shape(raw, hw, label)
    top = float(raw.max()) if raw.size else 0.0
    if raw.dtype == np.uint8:
        scale = 255.0
    elif raw.dtype.kind in "iu":  # 16-bit PNGs arrive as uint16 or int32
        scale = 255.0 if top <= 255 else 65535.0
    else:  # float: [0, 1] expected, 0-255 tolerated
        scale = 1.0 if top <= 1.0 else 255.0
    t = torch.from_numpy((raw.astype(np.float64) / scale).astype(np.float32)).clamp(0, 1)[None, None]
    return t if t.shape[-2:] == hw else F.interpolate(t, size=hw, mode="bilinear", align_corners=False)


def auto_stroke_map(content: torch.Tensor, work_size: int = 256, sigma: float = 4.0) -> torch.Tensor:
    """``--stroke-map auto``: a (1, 1, H, W) map in [0, 1] read from the content itself, large strokes (1) where
    it is flat and small ones (0) on detail. Local gradient energy of the luminance, on a ``work_size`` copy
    (the decision is about regions, not pixels), smoothed over ``sigma`` px there, relative to its 90th
    percentile; then enlarged back to the content's size."""
    x = resize_long_side(content[:1].float(), work_size)
    y = (x * x.new_tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)).sum(1, keepdim=True)
    energy = gaussian_blur(gradient_magnitude(y), sigma)
    top = torch.quantile(energy.flatten(), 0.9).clamp_min(1e-6)
    v = 1 - (energy / top).clamp(0, 1)
    return F.interpolate(v, size=content.shape[-2:], mode="bilinear", align_corners=False)
