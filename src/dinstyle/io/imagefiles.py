"""Opening and writing image files with Pillow, safely. Torch-free: shared by ``dinstyle.io.images``, the
training data and the torch-free ``dinstyle.lite``.

* Only the raster formats in ``READ_FORMATS`` are ever opened, whatever a file's name or first bytes
  claim: Pillow would hand PostScript/EPS to Ghostscript where it is installed, and many rarely used
  parsers are better left shut.
* The pixel guard (``open_lazy``) reads the size from the header, before any pixel is decoded, and never
  touches Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` (threads opening images at the same time, a web
  server, keep Pillow's own guard intact). Where a plugin decodes or allocates while opening (ICO, WebP),
  the sizes are read from the bytes first (``opensizes``), and a file whose sizes cannot be read is refused.
* An encoder that refuses an image (WebP's 16383-pixel limit, ICO's 256) is a one-line error naming
  the file, like every other failure.
"""
from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
from pathlib import Path
from typing import BinaryIO, Union

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DinstyleError, first_line
from .opensizes import BEFORE_OPEN

DEFAULT_MAX_PIXELS = 150_000_000  # ~12k x 12k: bigger is almost surely a mistake or a decompression bomb
# The formats Pillow may open (JPEG covers MPO, the multi-picture JPEG of cameras). Not EPS/PS (Ghostscript),
# PDF, PSD, FITS, WMF, ...: nobody styles those, and every parser opened is attack surface.
READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "TGA", "PPM", "JPEG2000", "ICO", "QOI", "AVIF")
Source = Union[str, os.PathLike, bytes, BinaryIO]


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
