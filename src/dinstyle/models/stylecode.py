"""The style code: every DIN level's dynamic kernel and bias, computed once per style.

It is saved, blended, reused for every frame and tile, and is the second input of the exported
content graph. Keys are ``<level>.weight`` (B, Cout, Cin/g, k, k) and ``<level>.bias`` (B, Cout).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..errors import DinstyleError
from ..io.formats import FLOAT16_MAX, STYLE_CODE_FORMAT
from ..io.tensorfiles import WeightsError, load_safetensors, non_finite, save_safetensors


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
        """A saved code: one style (batch 1), finite values (checked by ``load_safetensors``)."""
        tensors, meta = load_safetensors(path)
        if meta.pop("format", None) != STYLE_CODE_FORMAT:
            raise WeightsError(f"{path}: not a dinstyle style code (made by 'dinstyle encode-style')")
        batches = {int(v.shape[0]) if v.dim() else 0 for v in tensors.values()}
        if not tensors or batches != {1}:
            n = ", ".join(map(str, sorted(batches))) or "no tensors"
            raise WeightsError(f"{path}: a style code file holds exactly one style, this one holds {n} "
                               "(re-encode it with 'dinstyle encode-style')")
        return require_finite(cls(tensors, meta), str(path))


def require_finite(code: StyleCode, label: str = "style code") -> StyleCode:
    """The one check that a code about to be used holds only finite numbers, within float16's range (the
    precision GPUs run it in): NaN, inf or 1e30 only ever paint a black picture."""
    bad = non_finite(code.tensors, FLOAT16_MAX)
    if bad:
        raise DinstyleError(f"{label}: style code holds NaN, inf or values beyond float16 in {bad}; the style "
                            "code or the model that encoded it is damaged")
    return code


def normalized_weights(weights: Sequence[float], n: int) -> list[float]:
    """The one rule for blend weights: ``n`` finite, non-negative numbers, not all zero, scaled to sum to 1
    (divided by the largest first, so even 1e308,1e308 is an even blend instead of an overflowing sum)."""
    w = [float(v) for v in weights]
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} styles")
    if not all(math.isfinite(v) and v >= 0 for v in w) or max(w, default=0.0) <= 0:
        raise ValueError("weights must be finite, non-negative numbers, not all zero")
    top = max(w)
    scaled = [v / top for v in w]
    total = sum(scaled)
    return [v / total for v in scaled]


def blend(codes: Sequence[StyleCode], weights: Sequence[float] | None = None) -> StyleCode:
    """Weighted average in DIN-parameter space (weights are normalised to sum to 1)."""
    if not codes:
        raise ValueError("blend needs at least one style code")
    weights = normalized_weights([1.0] * len(codes) if weights is None else weights, len(codes))
    if not all(codes[0].compatible_with(c) for c in codes[1:]):
        raise ValueError("style codes come from different models and cannot be blended")
    out = {k: sum(c.tensors[k] * w for c, w in zip(codes, weights)) for k in codes[0].tensors}
    meta = dict(codes[0].meta, blend=[{"style": c.meta.get("style", "?"), "weight": w} for c, w in zip(codes, weights)])
    return StyleCode(out, meta)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
