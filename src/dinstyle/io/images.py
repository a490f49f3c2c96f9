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
from PIL import Image, ImageCms

from ..errors import DinstyleError
from .atomic import atomic_path
from .imagefiles import DEFAULT_MAX_PIXELS, Source, decode_image, encode_image, image_extensions, source_label

__all__ = ["DEFAULT_MAX_PIXELS", "decode_image", "image_bytes", "image_extensions", "load_image", "open_image",
           "output_format", "pil_to_tensor", "save_image", "tensor_to_pil", "to_srgb"]

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
