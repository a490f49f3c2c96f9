"""Tensor files: safetensors (our self-describing model files and style codes) and plain torch state dicts.

Everything that is not safetensors goes through ``torch.load(weights_only=True)``: a weights file must
never be able to run code. The VGG-19 file layouts are read in ``backbones/vgg_files.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import DinstyleError, first_line
from .atomic import atomic_write
from .formats import FLOAT16_MAX, MODEL_FORMAT, MODEL_FORMAT_VERSION
from .metadata import decode_metadata, encode_metadata

FORMAT, FORMAT_VERSION = MODEL_FORMAT, MODEL_FORMAT_VERSION


class WeightsError(DinstyleError):
    """A weights file is missing, unreadable or of the wrong layout (message is one line)."""


def save_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    """Write tensors + JSON-able metadata atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = encode_metadata(metadata)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read tensors and metadata; JSON-encoded metadata values are decoded.

    Every file we read is checked here, once: no tensor may hold NaN or inf (a model or style code
    with them only ever paints black); a dinstyle model file's values must fit float16 and its metadata
    must be one we can read (``check_model_metadata``; the config keys each architecture knows are checked by
    ``models.registry.read_model_file``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        tensors = load_file(str(path), device="cpu")

        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({first_line(e)})") from None
    meta = decode_metadata(raw, str(path))
    model = meta.get("format") == FORMAT
    bad = non_finite(tensors, FLOAT16_MAX if model else None)
    if bad:
        what = "NaN, inf or values beyond float16" if model else "NaN or inf"
        raise WeightsError(f"{path}: tensor {bad!r} holds {what}; the file is damaged or was saved from a "
                           "diverged model")
    if model:
        check_model_metadata(path, meta)
    return tensors, meta


def non_finite(tensors: dict[str, torch.Tensor], limit: float | None = None) -> str | None:
    """The first floating-point tensor holding NaN or inf (or a magnitude over ``limit``), or None."""
    for k, v in tensors.items():
        if v.is_floating_point() and v.numel():
            if not bool(torch.isfinite(v).all()) or (limit is not None and float(v.abs().max()) > limit):
                return k
    return None


def check_model_metadata(path: str | os.PathLike, meta: dict) -> None:
    """A dinstyle model file's metadata, before anything is built from it: a format version this code
    reads, an architecture name, a config table and an info table (the keys of the config are the models' to
    check: ``models.registry.check_model_config``)."""
    version = meta.get("format_version", FORMAT_VERSION)  # files from before the field read as version 1
    if str(version) != FORMAT_VERSION:
        raise WeightsError(f"{path}: model file format version {version!r} is not supported (this dinstyle "
                           f"reads version {FORMAT_VERSION}); upgrade dinstyle or re-save the model")
    arch, config, info = meta.get("arch"), meta.get("config", {}), meta.get("info", {})
    if not isinstance(arch, str):
        raise WeightsError(f"{path}: model file metadata 'arch' must be a name, got {arch!r}"[:200])
    for name, value in (("config", config), ("info", info)):
        if not isinstance(value, dict):
            raise WeightsError(f"{path}: model file metadata {name!r} must be a table, got {type(value).__name__}")


def load_torch_file(path: str | os.PathLike) -> dict:
    """Load a .pth/.bin state dict safely (tensors only, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad or unsafe pickles
        raise WeightsError(f"{path}: cannot be loaded safely ({first_line(e)})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return obj
