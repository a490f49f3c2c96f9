"""The style bank: every style of the job encoded once, stacked into one style code of batch N (style
``i`` of the sorted style list is row ``i``), saved beside the outputs and reused by every worker and
every rerun. It is a plain safetensors file with the style-code keys (``<level>.weight``/``.bias``).

The list of styles itself lives in the job file (``job.json``): a bank of 80k paintings would not fit
safetensors' metadata. The bank's metadata names the model, its weights and a digest of that list,
so a bank made for other styles or another model is never reused.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from ..io.images import load_image
from ..io.tensorfiles import WeightsError, load_safetensors, save_safetensors
from ..models.stylecode import StyleCode
from ..errors import DinstyleError
from .tree import read_bytes

NAME = "style-bank.safetensors"
FORMAT = "dinstyle-style-bank"


def digest(entries: list) -> str:
    """A short hash of a JSON-able list (the styles, with their sizes and dates)."""
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()[:16]


def stamp(src: str) -> str:
    """What tells a changed style file from the one encoded: its size and time (local files only)."""
    try:
        st = Path(src).stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return ""


def build(stylizer, styles: list[tuple[str, str]], key: str) -> tuple[StyleCode, list[dict]]:
    """Encode every style (at the model's own style size); returns the bank (not yet saved) and the styles
    it holds, ``[{"name", "sha256"}]`` in bank order. An unreadable style is skipped with a warning: a
    folder of 80k paintings always has one."""
    codes, kept = [], []
    for name, src in styles:
        try:
            data = read_bytes(src)
            code = stylizer.encode_style(load_image(data, name=name))
        except DinstyleError as e:
            warnings.warn(f"style {name} skipped: {e}", stacklevel=2)
            continue
        codes.append({k: v.detach().float().cpu() for k, v in code.tensors.items()})
        kept.append({"name": name, "sha256": hashlib.sha256(data).hexdigest()})
    if not codes:
        raise DinstyleError("no usable style: every style image failed to load")
    tensors = {k: torch.cat([c[k] for c in codes]) for k in codes[0]}
    meta = {"format": FORMAT, "model": stylizer.model_id, "weights": stylizer.fingerprint,
            "style_size": stylizer.style_size, "key": key, "count": len(kept), "styles": digest(kept)}
    return StyleCode(tensors, meta), kept


def save(path: Path, bank: StyleCode) -> None:
    save_safetensors(path, bank.tensors, bank.meta)


def load(path: Path, key: str | None = None, styles: list[dict] | None = None) -> StyleCode | None:
    """The bank at ``path``; None when there is none, or (given ``key`` and ``styles``) it was made from
    other style files or by another model."""
    if not path.is_file():
        return None
    try:
        tensors, meta = load_safetensors(path)
    except WeightsError:
        return None  # damaged: encode again
    if meta.get("format") != FORMAT:
        raise DinstyleError(f"{path}: not a dinstyle style bank")
    if key is not None and (meta.get("key") != key or styles is None or meta.get("styles") != digest(styles)):
        return None
    return StyleCode(tensors, meta)


def pick(bank: StyleCode, indices: list[int]) -> StyleCode:
    """The codes of ``indices``, one row per image of a batch (the DIN levels take per-sample codes)."""
    idx = torch.tensor(indices, dtype=torch.long)
    return StyleCode({k: v.index_select(0, idx.to(v.device)) for k, v in bank.tensors.items()}, dict(bank.meta))
