"""What a caller may hand us as a style or a content image, classified once.

A style is one of: a :class:`StyleCode` in memory, a saved code (``.safetensors``), a built-in style
(``builtin:NAME``, resolved here to its file), an image file, or an image in memory (PIL, numpy, tensor).
Every layer above (API, CLI, web app) asks :func:`style_source` instead of sniffing suffixes itself.
A content image is a path, PIL image, numpy array or tensor; :func:`content_tensor` turns any of them
into one tensor form and :func:`like_input` turns the result back into the caller's kind.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image

from ..errors import DinstyleError, UsageError
from ..io.builtin_styles import builtin_style, is_builtin
from ..io.images import DEFAULT_MAX_PIXELS, open_image, pil_to_tensor, tensor_to_pil, to_srgb
from ..models.stylecode import StyleCode

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]
StyleLike = Union[ImageLike, StyleCode]
CODE_SUFFIX = ".safetensors"

# The kinds of style source; a "saved" one is already a code and has a fixed style size.
CODE, CODE_FILE, IMAGE_FILE, IMAGE = "code", "code-file", "image-file", "image"


@dataclass(frozen=True)
class StyleSource:
    kind: str  # CODE, CODE_FILE, IMAGE_FILE or IMAGE
    value: object  # the StyleCode, the file's Path, or the in-memory image (or its encoded bytes)
    label: str  # how messages name it: the argument as given (builtin:NAME stays so), or the type's name
    sha256: str | None = None  # the content hash when the caller has it (the server: the upload's bytes)
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # the decode's pixel guard (the server: its own --max-pixels)

    @property
    def saved(self) -> bool:
        """Already encoded: its style size cannot change (no --style-size)."""
        return self.kind in (CODE, CODE_FILE)

    @property
    def path(self) -> Path | None:
        """The file this style is read from (for "never overwrite an input"), if any."""
        return self.value if self.kind in (CODE_FILE, IMAGE_FILE) else None


def style_source(style: StyleLike | StyleSource) -> StyleSource:
    """Classify ``style``; unknown built-in names and missing files are one-line errors here."""
    if isinstance(style, StyleSource):
        return style
    if isinstance(style, StyleCode):
        return StyleSource(CODE, style, "style code")
    if isinstance(style, (str, os.PathLike)):
        label = str(style)
        if is_builtin(label):
            return StyleSource(IMAGE_FILE, builtin_style(label).path, label)
        path = Path(style)
        kind = CODE_FILE if label.endswith(CODE_SUFFIX) else IMAGE_FILE
        if not path.is_file():
            raise DinstyleError(f"{label}: no such file")
        return StyleSource(kind, path, label)
    if isinstance(style, (Image.Image, np.ndarray)) or torch.is_tensor(style):
        return StyleSource(IMAGE, style, type(style).__name__)
    raise TypeError(f"unsupported style type {type(style).__name__}")


def check_resizable(sources: list[StyleSource], resized: bool) -> None:
    """A saved code cannot be re-encoded at another size: refuse one when a style size is given."""
    saved = next((s for s in sources if s.saved), None)
    if resized and saved is not None:
        raise UsageError(f"{saved.label}: a saved style code has a fixed style size; --style-size needs the "
                         "style image")


def content_tensor(image: ImageLike, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Any image (or an image file's bytes) -> ((B, 3, H, W) float32 CPU in [0, 1], its transparency (B, 1, H, W)
    or None). Transparency is the image's fourth channel, never the style strength ``alpha``."""
    if isinstance(image, bytes):
        image = io.BytesIO(image)
    if isinstance(image, (str, os.PathLike, Image.Image, io.BytesIO)):
        rgb, transparency = open_image(image, max_pixels, name) if not isinstance(image, Image.Image) else to_srgb(image)
        return pil_to_tensor(rgb), None if transparency is None else pil_to_tensor(transparency)[:, :1]
    if isinstance(image, np.ndarray):
        a = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        a = a[..., None] if a.ndim == 2 else a
        if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
            raise DinstyleError(f"numpy image must be (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
        image = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
    if torch.is_tensor(image):
        x = image.detach().float().cpu()
        x = x / 255.0 if not image.is_floating_point() else x
        if not bool(torch.isfinite(x).all()):
            raise DinstyleError("image holds non-finite values (NaN or inf)")
        x = x.unsqueeze(0) if x.dim() == 3 else x
        if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
            raise DinstyleError(f"tensor image must be (3|4, H, W) or (B, 3|4, H, W), got {tuple(image.shape)}")
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return x[:, :3].contiguous(), (x[:, 3:] if x.shape[1] == 4 else None)
    raise TypeError(f"unsupported image type {type(image).__name__}")


def like_input(out: torch.Tensor, original: ImageLike, transparency: torch.Tensor | None = None):
    """The result as the same kind of object the caller gave (transparency reattached; a path gives PIL)."""
    full = out if transparency is None else torch.cat([out, transparency.to(out)], 1)
    if torch.is_tensor(original):
        res = full.to(original.device)
        res = res.to(original.dtype) if original.is_floating_point() else (res * 255 + 0.5).to(original.dtype)
        return res if original.dim() == 4 else res[0]
    if isinstance(original, np.ndarray):
        a = full[0].clamp(0, 1).permute(1, 2, 0).numpy()
        return (a * 255 + 0.5).astype(np.uint8) if original.dtype == np.uint8 else a.astype(np.float32)
    return tensor_to_pil(full)
