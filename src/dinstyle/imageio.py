"""Reading and writing images (to be hardened: EXIF, CMYK, 16-bit, ICC, alpha, bomb guard)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DinstyleError
from .weights import atomic_path


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open an image as RGB (EXIF orientation applied); one-line error naming the file on failure."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")
    except FileNotFoundError:
        raise DinstyleError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DinstyleError(f"{path}: cannot read image ({e})") from None


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL RGB -> (1, 3, H, W) float in [0, 1]."""
    a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) float -> PIL RGB (clamped, rounded)."""
    x = x.detach().float().cpu()
    x = x[0] if x.dim() == 4 else x
    a = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(a, "RGB")


def save_image(im: Image.Image, path: str | os.PathLike, **kwargs) -> None:
    """Write atomically (temp file + rename) in the format of the extension: no partial outputs."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise DinstyleError(f"{path}: unknown image format {path.suffix!r}")
    tmp = atomic_path(path)
    try:
        im.save(tmp, format=fmt, **kwargs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
