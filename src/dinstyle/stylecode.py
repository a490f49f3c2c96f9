"""The style code: every DIN level's dynamic kernel and bias, computed once per style.

It is saved, blended, reused for every frame and tile, and is the second input of the exported
content graph. Keys are ``<level>.weight`` (B, Cout, Cin/g, k, k) and ``<level>.bias`` (B, Cout).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .weights import WeightsError, load_safetensors, save_safetensors

STYLE_CODE_FORMAT = "dinstyle-style-code"


@dataclass
class StyleCode:
    tensors: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)  # model id, arch, style image hash, settings

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]

    @property
    def levels(self) -> list[str]:
        return sorted({k.rsplit(".", 1)[0] for k in self.tensors})

    def to(self, device=None, dtype=None) -> "StyleCode":
        return StyleCode({k: v.to(device=device, dtype=dtype) for k, v in self.tensors.items()}, dict(self.meta))

    def select(self, i: int) -> "StyleCode":
        """Sample ``i`` of a batched code, keeping a batch dim of 1."""
        return StyleCode({k: v[i : i + 1] for k, v in self.tensors.items()}, dict(self.meta))

    def compatible_with(self, other: "StyleCode") -> bool:
        return self.tensors.keys() == other.tensors.keys() and all(
            self.tensors[k].shape[1:] == other.tensors[k].shape[1:] for k in self.tensors)

    def save(self, path: str | Path) -> None:
        save_safetensors(path, self.tensors, {"format": STYLE_CODE_FORMAT, **self.meta})

    @classmethod
    def load(cls, path: str | Path) -> "StyleCode":
        tensors, meta = load_safetensors(path)
        if meta.pop("format", None) != STYLE_CODE_FORMAT:
            raise WeightsError(f"{path}: not a dinstyle style code (made by 'dinstyle encode-style')")
        return cls(tensors, meta)


def blend(codes: Sequence[StyleCode], weights: Sequence[float] | None = None) -> StyleCode:
    """Weighted average in DIN-parameter space (weights are normalised to sum to 1)."""
    if not codes:
        raise ValueError("blend needs at least one style code")
    weights = [1.0] * len(codes) if weights is None else list(weights)
    if len(weights) != len(codes) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("style weights must be one non-negative number per style, not all zero")
    if not all(codes[0].compatible_with(c) for c in codes[1:]):
        raise ValueError("style codes come from different models and cannot be blended")
    total = float(sum(weights))
    out = {k: sum(c.tensors[k] * (w / total) for c, w in zip(codes, weights)) for k in codes[0].tensors}
    meta = dict(codes[0].meta, blend=[{"style": c.meta.get("style", "?"), "weight": w / total} for c, w in zip(codes, weights)])
    return StyleCode(out, meta)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
