"""Stroke scale of a stylized image: the power-weighted mean wavelength of its high-pass luminance.

1. Luminance (Rec. 601) minus a Gaussian blur (sigma 24 px): what is left is texture and strokes, not the
   photo's large shapes; a 16-px border is cropped (the blur's padding).
2. Hann window, 2-D power spectrum; only frequencies between 1/64 and 1/2 cycles per px count.
3. ``wavelength`` = sum(P(f) / |f|) / sum(P(f)) in px: bigger strokes move power to lower frequencies.
   ``hp_rms`` = RMS of the high-pass (luminance in [0, 1]): bigger strokes with as much energy, not blur.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .stroke import gaussian_blur, luminance

SIGMA, BORDER, F_LOW, F_HIGH = 24.0, 16, 1 / 64, 1 / 2


@dataclass
class StrokeScale:
    wavelength: float  # px
    hp_rms: float


def stroke_scale(img: torch.Tensor) -> StrokeScale:
    """(1, 3, H, W) RGB in [0, 1] (H, W > 2 x 16 px) -> its stroke wavelength and high-pass RMS."""
    y = luminance(img.clamp(0, 1).double())
    hp = (y - gaussian_blur(y, SIGMA))[0, 0, BORDER:-BORDER, BORDER:-BORDER]
    h, w = hp.shape
    window = torch.hann_window(h, periodic=False, dtype=hp.dtype)[:, None] * \
        torch.hann_window(w, periodic=False, dtype=hp.dtype)[None, :]
    power = torch.fft.rfft2((hp - hp.mean()) * window).abs().square()
    fy = torch.fft.fftfreq(h, dtype=hp.dtype)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=hp.dtype)[None, :]
    f = (fy.square() + fx.square()).sqrt()
    band = (f >= F_LOW) & (f <= F_HIGH)
    p = power[band]
    return StrokeScale(float((p / f[band]).sum() / p.sum().clamp_min(1e-30)), float(hp.square().mean().sqrt()))
