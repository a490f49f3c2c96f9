"""Periodic artefacts in flat regions: how much of the texture a model paints over a flat sky or a flat graphic
is a grid or streaks rather than brushwork.

Brush texture has a broad spectrum: its power spreads over many frequencies and directions. A grid (the
network's stride pattern) puts its power into a few frequencies; streaks into one direction. So:

1. Where: ``flat`` (B|1, 1, H, W), the content's flat pixels (``eval.stroke.content_masks``), where every bit
   of texture is the model's own. Square windows of ``window`` px on a ``window / 2`` grid that lie wholly
   inside it are taken (none: NaN).
2. What: the output's luminance high-pass ``Y - G_sigma(Y)`` (sigma 8 px: periods up to ~16 px count, not
   the slow shading), each window's mean removed, Hann-windowed; power spectra averaged over the windows
   (Welch), so the random fluctuation of brushwork averages out and a pattern that repeats does not.
3. ``periodic`` = the share of that power (frequencies 2/window .. 1/2 cycles per px) that lies in bins holding
   more than ``peak`` (10) times the median power of their ring of equal frequency. Isotropic brushwork scores
   a few percent; a pure grid or pure streaks nearly 1. ``texture_rms`` = the high-pass RMS in those windows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .stroke import gaussian_blur, luminance

SIGMA, WINDOW, PEAK = 8.0, 64, 10.0


@dataclass
class PeriodicScore:
    periodic: float  # share of flat-region texture power in spectral peaks (0 = none, 1 = all)
    texture_rms: float  # high-pass luminance RMS over the windows measured
    windows: int  # how many windows were flat enough to measure


def _flat_windows(flat: torch.Tensor, window: int) -> list[tuple[int, int]]:
    """Top-left corners of ``window`` squares on a ``window // 2`` grid lying wholly in ``flat`` (H, W)."""
    inside = -F.max_pool2d(-flat.float()[None, None], window, stride=window // 2)[0, 0] > 0.5
    return [(int(i) * (window // 2), int(j) * (window // 2)) for i, j in inside.nonzero().tolist()]


def _ring_peak_share(power: torch.Tensor, peak: float) -> float:
    """Share of ``power`` ((n, n) averaged spectrum, fftshifted) in bins > ``peak`` x their ring's median."""
    n = power.shape[0]
    f = torch.fft.fftshift(torch.fft.fftfreq(n, dtype=power.dtype))
    radius = (f[:, None].square() + f[None, :].square()).sqrt() * n  # in bins
    ring = radius.round().long()
    total, in_peaks = 0.0, 0.0
    for r in range(2, n // 2 + 1):
        p = power[ring == r]
        if p.numel() < 8:
            continue
        total += float(p.sum())
        in_peaks += float(p[p > peak * p.median()].sum())
    return in_peaks / total if total > 0 else float("nan")


def periodic_artefacts(output: torch.Tensor, flat: torch.Tensor, window: int = WINDOW, sigma: float = SIGMA,
                       peak: float = PEAK) -> list[PeriodicScore]:
    """One ``PeriodicScore`` per image of ``output`` ((B, 3, H, W) RGB in [0, 1]); ``flat`` a (B|1, 1, H, W)
    boolean mask of the content's flat pixels (see the module doc)."""
    if flat.shape[-2:] != output.shape[-2:]:
        raise ValueError(f"mask {tuple(flat.shape[-2:])} and output {tuple(output.shape[-2:])} differ in size")
    y = luminance(output.clamp(0, 1).double())
    hp = y - gaussian_blur(y, sigma)
    hann = torch.hann_window(window, periodic=False, dtype=hp.dtype)
    taper = hann[:, None] * hann[None, :]
    scores = []
    for i in range(output.shape[0]):
        corners = _flat_windows(flat[i if flat.shape[0] > 1 else 0, 0], window)
        if not corners:
            scores.append(PeriodicScore(math.nan, math.nan, 0))
            continue
        tiles = torch.stack([hp[i, 0, t:t + window, l:l + window] for t, l in corners])
        tiles = tiles - tiles.mean((1, 2), keepdim=True)
        power = torch.fft.fftshift(torch.fft.fft2(tiles * taper).abs().square().mean(0))
        scores.append(PeriodicScore(_ring_peak_share(power, peak), float(tiles.square().mean().sqrt()),
                                    len(corners)))
    return scores


__all__ = ["PeriodicScore", "periodic_artefacts"]
