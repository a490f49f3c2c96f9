"""Reading and writing images robustly.

Inputs of any common kind become upright sRGB: EXIF orientation is applied; grayscale, palette, CMYK,
16-bit and float images are converted; an embedded ICC profile is honoured (Pillow ImageCms); alpha is
kept apart so callers can reattach it. Opening (the formats allowed, the pixel guard read from the
header) and encoding live in ``imagefiles``, shared with the torch-free ``dinstyle.lite``. Every failure
is a one-line ``DinstyleError`` naming the file. Writes are atomic (temp file + rename) and can refuse to
replace an existing file.
"""
from __future__ import annotations

import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps

from ..errors import DinstyleError
from .atomic import atomic_path
from .imagefiles import (DEFAULT_MAX_PIXELS, PixelLimitError, Source, decode_image, encode_image, image_extensions,
                         open_lazy, source_label)

__all__ = ["DEFAULT_MAX_PIXELS", "BadImage", "decode_image", "image_bytes", "image_extensions", "list_images",
           "load_image", "load_rgb", "open_checked", "open_image", "oriented_size", "output_format", "pil_to_tensor",
           "save_image", "tensor_to_pil", "to_rgb", "to_srgb"]

ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "TGA", "JPEG2000", "BMP", "ICO"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def open_image(src: Source, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str | None = None
               ) -> tuple[Image.Image, Image.Image | None]:
    """Decode ``src`` into an upright sRGB 'RGB' image and its alpha channel ('L') or None."""
    return to_srgb(decode_image(src, max_pixels, name), source_label(src, name))


def _high_bit_to_l(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer and float grayscale -> 8-bit L (Pillow's convert would clip, not scale)."""
    a = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        scale = 1.0 if a.size == 0 or a.max() <= 1.0 else 255.0
    else:
        scale = 65535.0 if im.mode.startswith("I;16") or (a.size and a.max() > 255) else 255.0
    return Image.fromarray((np.clip(a / scale, 0, 1) * 255 + 0.5).astype(np.uint8), "L")


def to_srgb(im: Image.Image, label: str = "image") -> tuple[Image.Image, Image.Image | None]:
    """Any Pillow mode -> (RGB in sRGB, alpha 'L' or None), honouring an embedded ICC profile."""
    icc = im.info.get("icc_profile")
    alpha = None
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
    elif im.mode in ("L", "1") and "transparency" in im.info:
        im = im.convert("LA")
    if im.mode in ("RGBA", "RGBa", "LA", "La"):
        alpha = im.getchannel("A")
        im = im.convert("RGB" if im.mode.startswith("RGB") else "L")
    if im.mode.startswith("I") or im.mode == "F":
        im = _high_bit_to_l(im)
    elif im.mode == "1":
        im = im.convert("L")
    if icc and im.mode in ("RGB", "CMYK", "L"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if "srgb" not in (ImageCms.getProfileDescription(src) or "").lower():
                im = ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB")
        except Exception as e:  # a damaged or mismatched profile: fall back to the plain numbers
            warnings.warn(f"{label}: ignoring unusable ICC profile ({str(e)[:80]})", stacklevel=3)
    return im.convert("RGB"), alpha


def load_image(path: Source, keep_alpha: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               name: str | None = None) -> Image.Image:
    """Open an image as upright sRGB 'RGB' (or 'RGBA' when ``keep_alpha`` and it has transparency)."""
    rgb, alpha = open_image(path, max_pixels, name)
    if keep_alpha and alpha is not None:
        rgb.putalpha(alpha)
    return rgb


def to_rgb(im: Image.Image, label: str = "image") -> Image.Image:
    """Any mode -> 8-bit sRGB (``to_srgb``), transparency composited on white: what training sees (no alpha)."""
    rgb, alpha = to_srgb(im, label)
    if alpha is not None:
        white = Image.new("RGB", rgb.size, (255, 255, 255))
        white.paste(rgb, mask=alpha)
        rgb = white
    return rgb


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL image -> (1, 3, H, W) float in [0, 1] (alpha dropped; use :func:`to_srgb` first)."""
    a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(1, C, H, W) or (C, H, W) float -> PIL 'RGB' (C=3) or 'RGBA' (C=4), clamped and rounded."""
    x = x.detach().float().cpu()
    x = x[0] if x.dim() == 4 else x
    a = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(a, "RGBA" if a.shape[2] == 4 else "RGB")


def output_format(path: str | os.PathLike) -> str:
    """Pillow format name for the output path's extension, or a one-line error."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise DinstyleError(f"{path}: cannot write {path.suffix or 'extensionless'!r} images "
                            "(use .png, .jpg, .webp, .tif, ...)")
    return fmt


def _prepare(im: Image.Image, fmt: str, label: str) -> tuple[Image.Image, dict]:
    """Fit the image to what ``fmt`` can hold. Alpha in a format without it is flattened onto white."""
    if im.mode == "RGBA" and fmt not in ALPHA_FORMATS:
        warnings.warn(f"{label}: {fmt} has no alpha channel; transparent areas flattened onto white "
                      "(write .png, .webp or .tif to keep them)", stacklevel=3)
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.getchannel("A"))
        im = bg
    opts = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}.get(fmt, {})
    return im, opts


def image_bytes(im: Image.Image, fmt: str, label: str, **kwargs) -> bytes:
    """Encode ``im`` as Pillow format ``fmt`` in memory (stdout, the web API), with the same rules as a
    file: alpha flattened where ``fmt`` has none (with a warning), the encoder's refusals as one line."""
    im, opts = _prepare(im, fmt, label)
    buf = io.BytesIO()
    encode_image(im, buf, fmt, label, **{**opts, **kwargs})
    return buf.getvalue()


def save_image(im: Image.Image, path: str | os.PathLike, overwrite: bool = True, format: str | None = None,
               **kwargs) -> None:
    """Write atomically (temp file + rename) in the format of the extension: never a partial file.

    ``path`` '-' writes to stdout (``format`` then defaults to PNG). With ``overwrite=False`` an
    existing file is refused, even one that appears while we write (hard link, which never replaces).
    """
    if str(path) == "-":
        sys.stdout.buffer.write(image_bytes(im, (format or "PNG").upper(), "<stdout>", **kwargs))
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    fmt = format or output_format(path)
    if not overwrite and path.exists():
        raise DinstyleError(f"{path}: already exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise DinstyleError(f"{path}: folder {path.parent} does not exist")
    im, opts = _prepare(im, fmt, str(path))
    try:
        tmp = atomic_path(path)
    except OSError as e:
        raise DinstyleError(f"{path}: cannot write in {path.parent} ({e.strerror or e})") from None
    try:
        encode_image(im, tmp, fmt, str(path), **{**opts, **kwargs})
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise DinstyleError(f"{path}: already exists (use --overwrite to replace it)") from None
            except OSError:  # filesystems without hard links
                os.replace(tmp, path)
    except OSError as e:
        raise DinstyleError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------- folders of images (training, check-data)
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
    """Open lazily (header only, ``imagefiles.open_lazy``: its formats and pixel guard, nothing process-wide
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
