"""Image files, safely, with Pillow: open (the formats allowed, the pixel guard), decode to upright sRGB, to and
from tensors, encode and write. The one image module of the library; importing it imports no torch (only
``pil_to_tensor``/``tensor_to_pil`` do), so the torch-free ``dinstyle.lite.images`` opens and writes with
these very rules. Folders of training images (which files can be used): ``imagefolders``.

* Only the raster formats in ``READ_FORMATS`` are ever opened, whatever a file's name or first bytes
  claim: Pillow would hand PostScript/EPS to Ghostscript where it is installed, and many rarely used
  parsers are better left shut.
* The pixel guard (``open_lazy``) reads the size from the header, before any pixel is decoded, and never
  touches Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` (threads opening images at the same time, a web
  server, keep Pillow's own guard intact). Where a plugin decodes or allocates while opening (ICO, WebP),
  the sizes are read from the bytes first (``opensizes``), and a file whose sizes cannot be read is refused.
* Inputs of any common kind become upright sRGB (``open_image``): EXIF orientation is applied; grayscale,
  palette, CMYK, 16-bit and float images are converted; an embedded ICC profile is honoured (Pillow
  ImageCms); alpha is kept apart so callers can reattach it.
* Every failure, an encoder's refusal too (WebP's 16383-pixel limit, ICO's 256), is a one-line
  ``DinstyleError`` naming the file. Writes are atomic (temp file + rename) and can refuse to replace an
  existing file.
"""
from __future__ import annotations

import contextlib
import io
import os
import struct
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import DinstyleError, first_line
from .atomic import atomic_path
from .opensizes import BEFORE_OPEN

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_MAX_PIXELS", "READ_FORMATS", "PixelLimitError", "Source", "check_pixels", "decode_image",
           "encode_image", "image_bytes", "image_extensions", "load_image", "open_image", "open_lazy",
           "output_format", "pil_to_tensor", "save_image", "source_label", "tensor_to_pil", "to_rgb", "to_srgb"]

DEFAULT_MAX_PIXELS = 150_000_000  # ~12k x 12k: bigger is almost surely a mistake or a decompression bomb
# The formats Pillow may open (JPEG covers MPO, the multi-picture JPEG of cameras). Not EPS/PS (Ghostscript),
# PDF, PSD, FITS, WMF, ...: nobody styles those, and every parser opened is attack surface.
READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "TGA", "PPM", "JPEG2000", "ICO", "QOI", "AVIF")
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "TGA", "JPEG2000", "BMP", "ICO"}  # the formats that can write transparency
Source = Union[str, os.PathLike, bytes, BinaryIO]
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


# ---------------------------------------------------------------------- opening: the formats and the pixel guard
def image_extensions() -> set[str]:
    """Lower-case file extensions of the formats we open (used to pick images out of folders)."""
    Image.init()
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in READ_FORMATS and fmt in Image.OPEN}


class PixelLimitError(DinstyleError):
    """An image (or a part a plugin decodes while opening) over the pixel limit."""


def check_pixels(width: int, height: int, max_pixels: int | None, label: str) -> None:
    """The pixel guard: refuse images (and video frames) over ``max_pixels`` (None or 0: no limit)."""
    if max_pixels and width * height > max_pixels:
        raise PixelLimitError(f"{label}: {width}x{height} = {width * height:,} pixels, over the limit of "
                            f"{max_pixels:,} (a decompression bomb? raise it with --max-pixels)")


def open_lazy(src: str | os.PathLike | BinaryIO, max_pixels: int | None = DEFAULT_MAX_PIXELS,
              label: str | None = None) -> Image.Image:
    """Identify ``src`` among ``READ_FORMATS`` and read its header only (what ``Image.open`` does, without
    its global decompression-bomb check): the pixel guard for ``max_pixels`` (None or 0: no limit), on the
    sizes a plugin decodes while opening (``opensizes.BEFORE_OPEN``) and on the opened size. Raises
    UnidentifiedImageError, or DinstyleError naming ``label`` (default: the path)."""
    Image.init()  # every plugin registered once; only READ_FORMATS are ever asked below
    label = label or source_label(src)
    if isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as f:
            prefix = f.read(16)
        fp, filename = os.fspath(src), os.fspath(src)  # each plugin opens (and on failure closes) the file
    else:
        try:
            src.seek(0)
        except (AttributeError, OSError, io.UnsupportedOperation):
            src = io.BytesIO(src.read())
        prefix = src.read(16)
        fp, filename = src, ""
    for fmt in Image.ID:
        if fmt not in READ_FORMATS or fmt not in Image.OPEN:
            continue
        factory, accept = Image.OPEN[fmt]
        ok = not accept or accept(prefix)
        if not ok or isinstance(ok, str):
            continue
        if max_pixels and fmt in BEFORE_OPEN:
            _check_before_open(fp, fmt, max_pixels, label)
        if not isinstance(fp, str):
            fp.seek(0)
        try:
            im = factory(fp, filename)
        except (SyntaxError, IndexError, TypeError, struct.error):  # as Image.open: try the next format
            continue
        _checked(im, max_pixels, label)
        return im
    raise UnidentifiedImageError(f"cannot identify image file {filename or '<stream>'}")


def _check_before_open(fp: str | BinaryIO, fmt: str, max_pixels: int, label: str) -> None:
    """The pixel guard on what ``fmt``'s plugin would decode while opening; sizes that cannot be read are
    refused (the plugin would decode whatever it finds)."""
    try:
        with open(fp, "rb") if isinstance(fp, str) else contextlib.nullcontext(fp) as f:
            sizes = BEFORE_OPEN[fmt](f)
    except (ValueError, struct.error) as e:
        raise DinstyleError(f"{label}: truncated or corrupt image ({fmt}: {first_line(e, 120)}; its size "
                            "cannot be checked before decoding)") from None
    for w, h in sizes:
        check_pixels(w, h, max_pixels, label)


def _checked(im: Image.Image, max_pixels: int | None, label: str) -> None:
    try:
        check_pixels(*im.size, max_pixels, label)
    except DinstyleError:
        im.close()
        raise


def source_label(src: Source, name: str | None = None) -> str:
    """How messages name an image source: ``name``, else the path, else '<stdin>'."""
    if name:
        return name
    return str(src) if isinstance(src, (str, os.PathLike)) else "<stdin>"


# ---------------------------------------------------------------------- decoding: upright sRGB
def decode_image(src: Source, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str | None = None) -> Image.Image:
    """Decode ``src`` (path, bytes or binary file) fully, upright, in its own mode (no colour conversion)."""
    label = source_label(src, name)
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        if p.is_dir():
            raise DinstyleError(f"{label}: is a directory, not an image")
        if p.is_file() and p.stat().st_size == 0:
            raise DinstyleError(f"{label}: empty file")
    elif isinstance(src, bytes):
        if not src:
            raise DinstyleError(f"{label}: empty input")
        src = io.BytesIO(src)
    try:
        with open_lazy(src, max_pixels, label) as im:
            im.load()
            return _upright(im, label)
    except DinstyleError:
        raise
    except FileNotFoundError:
        raise DinstyleError(f"{label}: no such file") from None
    except PermissionError:
        raise DinstyleError(f"{label}: permission denied") from None
    except UnidentifiedImageError:
        raise DinstyleError(f"{label}: not an image, or a format Pillow cannot read") from None
    except Image.DecompressionBombError as e:  # a plugin's own check while loading (GIF/ICO frames)
        raise DinstyleError(f"{label}: too many pixels ({e})") from None
    except MemoryError:
        raise DinstyleError(f"{label}: out of memory while decoding") from None
    except Exception as e:  # truncated/corrupt data surfaces as OSError, SyntaxError, zlib.error, EOFError...
        raise DinstyleError(f"{label}: truncated or corrupt image ({first_line(e, 160)})") from None


def _upright(im: Image.Image, label: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except Exception as e:  # a broken EXIF block should not lose the picture
        warnings.warn(f"{label}: ignoring unreadable EXIF orientation ({e})", stacklevel=4)
        return im


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


# ---------------------------------------------------------------------- tensors
def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL image -> (1, 3, H, W) float in [0, 1] (alpha dropped; use :func:`to_srgb` first)."""
    import torch  # here, not above: the torch-free lite imports this module
    a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(1, C, H, W) or (C, H, W) float -> PIL 'RGB' (C=3) or 'RGBA' (C=4), clamped and rounded."""
    x = x.detach().float().cpu()
    x = x[0] if x.dim() == 4 else x
    a = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(a, "RGBA" if a.shape[2] == 4 else "RGB")


# ---------------------------------------------------------------------- writing
def encode_image(im: Image.Image, dest: str | os.PathLike | BinaryIO, fmt: str, label: str, **options) -> None:
    """``im.save(dest, format=fmt)``; whatever the encoder refuses is a one-line error naming ``label``."""
    try:
        im.save(dest, format=fmt, **options)
    except OSError as e:
        if e.errno is not None:  # the disk: full, read-only, gone
            raise DinstyleError(f"{label}: cannot write ({e.strerror or e})") from None
        raise DinstyleError(f"{label}: cannot write as {fmt} ({first_line(e, 160)})") from None
    except MemoryError:
        raise DinstyleError(f"{label}: out of memory while encoding {fmt}") from None
    except Exception as e:  # ValueError (WebP's 16383-px limit, ICO's sizes), KeyError, struct.error, ...
        raise DinstyleError(f"{label}: cannot write as {fmt} ({first_line(e, 160)})") from None


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
