"""Folders of images for training and ``dinstyle check-data``: the image files under a folder, and which of them
cannot be used (``BadImage``: unreadable, truncated or over the pixel limit), opened with the rules of
``images`` (its formats, its pixel guard, nothing process-wide touched, so loader threads are safe)."""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageOps

from ..errors import DinstyleError
from .images import PixelLimitError, image_extensions, open_lazy, to_rgb

__all__ = ["BadImage", "list_images", "load_rgb", "open_checked", "oriented_size"]

ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class BadImage(Exception):
    """An image a folder holds that cannot be used; ``kind`` is 'unreadable', 'truncated' or 'huge'. Training
    skips it (and names it), ``dinstyle check-data`` reports it."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive, by extension, hidden entries skipped), sorted for determinism."""
    root = Path(folder)
    if not root.is_dir():
        raise DinstyleError(f"{root}: no such folder")
    found, seen, extensions = [], set(), image_extensions()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, f) for f in filenames
                  if not f.startswith(".") and Path(f).suffix.lower() in extensions]
    return sorted(found, key=lambda p: p.as_posix())


def open_checked(path: str | os.PathLike, max_pixels: int) -> Image.Image:
    """Open lazily (header only, ``images.open_lazy``: its formats and pixel guard, nothing process-wide
    touched, so loader threads are safe); raises BadImage."""
    try:
        im = open_lazy(path, max_pixels)
    except PixelLimitError as e:  # checked before decoding, also what a plugin decodes while opening (ICO)
        raise BadImage("huge", str(e)) from None
    except Exception as e:  # Pillow raises many types for broken files
        raise BadImage("unreadable", f"{path}: cannot read image ({type(e).__name__}: {e})") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise BadImage("huge", f"{path}: {w}x{h} exceeds the {max_pixels}-pixel limit")
    if w < 1 or h < 1:
        im.close()
        raise BadImage("unreadable", f"{path}: empty image ({w}x{h})")
    return im


def oriented_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) after the EXIF orientation is applied."""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    w, h = im.size
    return (h, w) if orientation in ROTATING_ORIENTATIONS else (w, h)


def load_rgb(path: str | os.PathLike, max_pixels: int, min_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode a whole image as upright RGB (``to_rgb``); raises BadImage. ``min_size`` (oriented w, h) lets a
    JPEG decode at a reduced scale that still covers it (much faster for photos cropped to 256 px anyway)."""
    im = open_checked(path, max_pixels)
    try:
        if min_size is not None:
            w, h = im.size
            ow, oh = oriented_size(im)
            need = min_size if (ow, oh) == (w, h) else (min_size[1], min_size[0])
            im.draft(None, need)  # only JPEG acts on it; the result is never smaller than ``need``
        im.load()
        im = ImageOps.exif_transpose(im)
        return to_rgb(im, str(path))
    except Exception as e:
        im.close()
        message = str(e)
        kind = "truncated" if "truncated" in message or "broken data stream" in message else "unreadable"
        raise BadImage(kind, f"{path}: {kind} ({type(e).__name__}: {message})") from None
