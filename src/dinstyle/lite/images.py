"""Image files <-> HxWx3 float32 arrays in [0, 1], with Pillow only (the torch-free twin of dinstyle.io.images)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DinstyleError
from ..io.atomic import atomic_write
from ..io.images import DEFAULT_MAX_PIXELS, decode_image, encode_image


def load_rgb(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as RGB floats in [0, 1] (EXIF orientation applied; alpha dropped, as dinstyle.io.images does).
    The formats allowed and the pixel guard are dinstyle's own (``dinstyle.io.images``)."""
    im = decode_image(path, max_pixels).convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding (as dinstyle.io.images does)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_rgb(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write atomically in the format of the extension: a crash or a signal never leaves a partial file."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise DinstyleError(f"{path}: unknown image format {path.suffix!r}")
    im = Image.fromarray(to_uint8(image))
    try:  # any encoder refusal: one line (encode_image)
        atomic_write(path, lambda tmp: encode_image(im, tmp, fmt, str(path)))
    except OSError as e:
        raise DinstyleError(f"{path}: cannot write image ({e.strerror or e})") from None


def resize(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize (antialiased when shrinking, like dinstyle's torch path), per channel in float."""
    if image.shape[:2] == (h, w):
        return image
    chans = [Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32)).resize((w, h), Image.BILINEAR)
             for c in range(image.shape[2])]
    return np.stack([np.asarray(c) for c in chans], -1).astype(np.float32)


def resize_bicubic(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic resize per channel in float (antialiased when shrinking): the stroke scale's resize, as
    ``dinstyle.runtime.scale.resize`` does it with torch."""
    if image.shape[:2] == (h, w):
        return image
    chans = [Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32)).resize((w, h), Image.BICUBIC)
             for c in range(image.shape[2])]
    return np.stack([np.asarray(c) for c in chans], -1).astype(np.float32)


def resize_long_side(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the longer side is ``size`` (the same rounding as ``dinstyle.api.resize_long_side``)."""
    h, w = image.shape[:2]
    s = size / max(h, w)
    return resize(image, max(1, round(h * s)), max(1, round(w * s)))
