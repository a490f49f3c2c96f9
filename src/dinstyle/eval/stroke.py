"""Stroke placement: does a stylization put strokes into the flat regions of non-natural images?

Instance-norm methods modulate what is already there, so on flat graphics (logos, cartoons, text,
renders) the flat regions stay nearly unstylized while edges get all the texture. The metric compares the
output's texture energy inside the content's flat regions with that inside its structured regions:

1. Masks from the *content*: per-pixel gradient magnitude (Sobel, max over RGB, so iso-luminant colour
   edges count) above ``edge_threshold`` marks edges. ``structure`` = edges dilated by ``edge_radius`` px;
   ``flat`` = pixels farther than ``flat_margin`` px from any edge (default: 1/32 of the short side, at
   least the high-pass support 3 sigma + 2 px), so neither the content's own edges nor the halo a stylized
   edge leaves around itself count as flat texture.
2. Texture of the *output*: luminance high-pass ``hp = Y - G_sigma(Y)`` (Gaussian, ``sigma`` = 2 px),
   energy ``hp^2`` per pixel.
3. Figures (per image):
   * ``placement`` = RMS(hp over flat) / RMS(hp over structure): 0 = flat regions untouched; ~1 = strokes as
     strong in flat regions as around edges. Higher = strokes placed more uniformly. The headline figure.
   * ``coverage`` = share of flat pixels whose *local* RMS texture (energy of flat pixels only, smoothed
     by G_{4 sigma}) reaches 25 % of the structure RMS: how much of the flat area gets strokes at all.
   * ``flat_rms``, ``structure_rms``: the two RMS values (luminance in [0, 1]).

A flat content region has zero high-pass by construction, so all of its texture is added by the model.
Figures are NaN for an image without flat or without structure pixels (callers skip those).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..layers.filters import gaussian_blur, gradient_magnitude  # noqa: F401  (re-exported: the metric's definitions)

LUMA = (0.299, 0.587, 0.114)


@dataclass
class PlacementScore:
    placement: float
    coverage: float
    flat_rms: float
    structure_rms: float
    flat_fraction: float  # share of the image counted as flat (for context)

    def as_dict(self) -> dict:
        return asdict(self)


def luminance(img: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) Rec. 601 luma."""
    w = img.new_tensor(LUMA).view(1, 3, 1, 1)
    return (img * w).sum(1, keepdim=True)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return mask
    return F.max_pool2d(mask.float(), 2 * radius + 1, stride=1, padding=radius) > 0


def content_masks(content: torch.Tensor, edge_threshold: float = 0.01, edge_radius: int = 2,
                  flat_margin: int | None = None, sigma: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat, structure) boolean masks (B, 1, H, W) of a content image in [0, 1] (see the module doc)."""
    edges = gradient_magnitude(content) > edge_threshold
    if flat_margin is None:  # beyond the high-pass support, so content edges add nothing to flat pixels
        flat_margin = max(math.ceil(3 * sigma) + 2, min(content.shape[-2:]) // 32)
    return ~_dilate(edges, flat_margin), _dilate(edges, edge_radius)


def stroke_placement(output: torch.Tensor, content: torch.Tensor, sigma: float = 2.0,
                     masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[PlacementScore]:
    """Stroke-placement figures of ``output`` (stylized ``content``), one per image of the batch.

    Both are (B, 3, H, W) RGB in [0, 1] of the same size; ``masks`` overrides ``content_masks(content)``.
    """
    if output.shape[-2:] != content.shape[-2:]:
        raise ValueError(f"output {tuple(output.shape[-2:])} and content {tuple(content.shape[-2:])} differ in size")
    flat, structure = masks if masks is not None else content_masks(content, sigma=sigma)
    y = luminance(output.clamp(0, 1).double())
    energy = (y - gaussian_blur(y, sigma)).square()
    # normalised convolution: local texture from flat pixels only, so nearby edges do not leak in
    fm = flat.to(energy.dtype).expand(energy.shape[0], 1, -1, -1)
    local_rms = (gaussian_blur(energy * fm, 4 * sigma) / gaussian_blur(fm, 4 * sigma).clamp_min(1e-6)
                 ).clamp_min(0).sqrt()
    scores = []
    for i in range(output.shape[0]):
        f, s = flat[i if flat.shape[0] > 1 else 0, 0], structure[i if structure.shape[0] > 1 else 0, 0]
        if not f.any() or not s.any():
            nan = float("nan")
            scores.append(PlacementScore(nan, nan, nan, nan, float(f.float().mean())))
            continue
        flat_rms = float(energy[i, 0][f].mean().sqrt())
        structure_rms = float(energy[i, 0][s].mean().sqrt())
        placement = flat_rms / structure_rms if structure_rms > 0 else float("nan")
        coverage = float((local_rms[i, 0][f] >= 0.25 * structure_rms).float().mean()) if structure_rms > 0 \
            else float("nan")
        scores.append(PlacementScore(placement, coverage, flat_rms, structure_rms, float(f.float().mean())))
    return scores
