"""The Python API: ``Stylizer.from_pretrained().stylize(content, style)``."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .imageio import load_image, pil_to_tensor, tensor_to_pil
from .models import DEFAULT_MODEL, StyleTransferNet, load_model, model_id
from .stylecode import StyleCode

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def _to_tensor(image: ImageLike) -> torch.Tensor:
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        return pil_to_tensor(image)
    if isinstance(image, np.ndarray):
        a = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0)
    if torch.is_tensor(image):
        return image.unsqueeze(0) if image.dim() == 3 else image
    raise TypeError(f"unsupported image type {type(image).__name__}")


def _like(out: torch.Tensor, original: ImageLike):
    """Return the result as the same kind of object the caller gave."""
    if isinstance(original, torch.Tensor):
        return out if original.dim() == 4 else out[0]
    if isinstance(original, np.ndarray):
        a = out[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return (a * 255 + 0.5).astype(np.uint8) if original.dtype == np.uint8 else a
    return tensor_to_pil(out)


def resize_long_side(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = size / max(h, w)
    return F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear",
                         antialias=True, align_corners=False)


class Stylizer:
    """A loaded model on a device, with the style-code cache."""

    def __init__(self, model: StyleTransferNet, device: str | torch.device = "auto"):
        self.device = pick_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()

    @classmethod
    def from_pretrained(cls, name_or_file: str = DEFAULT_MODEL, device: str = "auto") -> "Stylizer":
        """A registered model name (bundled weights) or a model file path."""
        return cls(load_model(name_or_file), device)

    @property
    def model_id(self) -> str:
        return model_id(self.model)

    @torch.inference_mode()
    def encode_style(self, style: ImageLike, style_size: int | None = 512) -> StyleCode:
        """Encode a style image once; reuse the code for any number of contents."""
        x = _to_tensor(style).to(self.device)
        if style_size:
            x = resize_long_side(x, style_size)
        code = self.model.encode_style(x)
        code.meta.update(model=self.model_id, style_size=style_size or 0)
        if isinstance(style, (str, os.PathLike)):
            code.meta["style"] = Path(style).name
        return code

    @torch.inference_mode()
    def stylize(self, image: ImageLike, style: ImageLike | StyleCode, alpha: float = 1.0):
        """Restyle ``image`` with ``style`` (an image or a StyleCode); returns the same kind as ``image``."""
        code = style if isinstance(style, StyleCode) else self.encode_style(style)
        x = _to_tensor(image).to(self.device)
        out = self.model.stylize(x, code.to(self.device), alpha=alpha)
        return _like(out.clamp(0, 1), image)
