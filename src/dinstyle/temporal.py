"""Temporal stability for video: smoothed DIN statistics, change-aware blending, cuts, and a flicker metric.

A feed-forward stylizer sees every frame alone, so tiny input changes (codec noise, a 1-px pan) move the
instance-norm statistics and the painted texture, and the output flickers. ``TemporalSmoother`` fights that
two ways, both scaled by one knob ``strength`` T in [0, 1] (0 = independent frames):

* statistics: each DIN level normalises with an exponential moving average of the per-frame mean/std,
  ``m_t = b*m_{t-1} + (1-b)*s_t`` with ``b = 0.9*T`` (a ~10-frame memory at T=1);
* output: ``o_t = w*o_{t-1} + (1-w)*y_t`` per pixel, with ``w = T*clamp(1 - d/tau, 0, 1)`` and ``d`` the
  input change (max over RGB, dilated 3x3) measured against the *blended reference input* ``r`` (blended with
  the same ``w``), so a slowly drifting input cannot accumulate lag: once the output lags, ``d`` grows.

Both reset at scene cuts (thumbnail difference above ``cut_threshold``), so nothing smears across a cut.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .layers.din import EPS, instance_stats

STATS_MOMENTUM = 0.9  # EMA factor of the DIN statistics at strength 1
CHANGE_SCALE = 0.08  # input change (in [0,1] units) at which blending with the previous output stops
CUT_THRESHOLD = 0.1  # mean abs difference of 32x32 thumbnails that marks a scene cut
THUMB = 32


class SceneCutDetector:
    """Flags frames whose low-resolution thumbnail differs strongly from the previous frame's (stateful)."""

    def __init__(self, threshold: float = CUT_THRESHOLD):
        self.threshold = threshold
        self.prev: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> list[bool]:
        """``x`` (B, 3, H, W) in [0, 1] -> one flag per frame; the first frame ever counts as a cut."""
        thumbs = F.adaptive_avg_pool2d(x.float(), THUMB)
        cuts = []
        for t in thumbs:
            cut = self.prev is None or self.prev.shape != t.shape or (t - self.prev).abs().mean().item() > self.threshold
            cuts.append(bool(cut))
            self.prev = t
        return cuts


class TemporalSmoother:
    """Carries state from frame to frame (and batch to batch) for one video.

    Per batch: ``cuts = begin(x)``, then ``model.stylize(x, code, stats_fn=smoother.stats_fn)``, then
    ``out = smoother.blend(x, y)``. Frames in a batch are handled in order, so any batch size gives the same
    result as batch size 1.
    """

    def __init__(self, strength: float = 0.0, cut_threshold: float = CUT_THRESHOLD):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"temporal strength must be in [0, 1], got {strength}")
        self.strength = strength
        self.momentum = STATS_MOMENTUM * strength
        self.cuts = SceneCutDetector(cut_threshold)
        self.batch_cuts: list[bool] = []
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.prev_out: torch.Tensor | None = None  # (1, 3, H, W) last blended output
        self.prev_ref: torch.Tensor | None = None  # (1, 3, H, W) the input that output stands for

    @property
    def active(self) -> bool:
        return self.strength > 0.0

    def begin(self, x: torch.Tensor) -> list[bool]:
        """Detect cuts in a new batch (B, 3, H, W); call before stylizing it."""
        self.batch_cuts = self.cuts(x)
        return self.batch_cuts

    def stats_fn(self, level: str, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """DIN hook: the time-smoothed (mean, std) for each frame of the batch at this level."""
        if not self.active:
            return None
        mean, std = instance_stats(feats, EPS)
        if len(self.batch_cuts) != feats.shape[0]:
            raise RuntimeError("TemporalSmoother.begin() was not called for this batch")
        b = self.momentum
        prev = self.stats.get(level)
        means, stds = [], []
        for i, cut in enumerate(self.batch_cuts):
            m, s = mean[i : i + 1], std[i : i + 1]
            if prev is not None and not cut and prev[0].shape == m.shape:
                m, s = b * prev[0] + (1 - b) * m, b * prev[1] + (1 - b) * s
            prev = (m, s)
            means.append(m)
            stds.append(s)
        self.stats[level] = prev
        return torch.cat(means), torch.cat(stds)

    def blend(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mix each stylized frame ``y`` with the previous output where the input ``x`` did not change."""
        if not self.active:
            return y
        outs = []
        for i, cut in enumerate(self.batch_cuts):
            xi, yi = x[i : i + 1], y[i : i + 1]
            if cut or self.prev_out is None or self.prev_out.shape != yi.shape:
                out, ref = yi, xi
            else:
                change = (xi - self.prev_ref).abs().amax(dim=1, keepdim=True)
                change = F.max_pool2d(change, 3, stride=1, padding=1)  # no ghost halos beside moving edges
                w = self.strength * (1.0 - change / CHANGE_SCALE).clamp(0.0, 1.0)
                out = yi + w * (self.prev_out - yi)
                ref = xi + w * (self.prev_ref - xi)
            self.prev_out, self.prev_ref = out, ref
            outs.append(out)
        return torch.cat(outs)


# ---------------------------------------------------------------------------------------- flicker metric
def _as_float(frame) -> np.ndarray:
    a = np.asarray(frame)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def flicker(inputs: Sequence, outputs: Sequence, cuts: Iterable[int] = (), floor: float = 1.0 / 255) -> float:
    """Output change relative to input change over consecutive frames (lower = steadier).

    With frames in [0, 1] (uint8 is divided by 255) and P the pairs (t-1, t), t >= 1, that do not cross a
    cut (``cuts`` lists the indices t of the first frame of each new scene)::

        flicker = mean_{t in P} mean|O_t - O_{t-1}|  /  max(mean_{t in P} mean|I_t - I_{t-1}|, floor)

    The ``floor`` (one 8-bit code value) handles static input: there the metric is the output change in
    code values, 0 for a perfectly static output. Inputs and outputs may differ in size (per-pixel means).
    """
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} input frames but {len(outputs)} output frames")
    skip = set(cuts)
    pairs = [t for t in range(1, len(inputs)) if t not in skip]
    if not pairs:
        raise ValueError("flicker needs at least two consecutive frames within one scene")
    d_out = np.mean([np.abs(_as_float(outputs[t]) - _as_float(outputs[t - 1])).mean() for t in pairs])
    d_in = np.mean([np.abs(_as_float(inputs[t]) - _as_float(inputs[t - 1])).mean() for t in pairs])
    return float(d_out / max(d_in, floor))


# ---------------------------------------------------------------------------------------- test clip
def _texture(rng: np.random.Generator, h: int, w: int, palette: np.ndarray) -> np.ndarray:
    """A smooth-but-detailed colour texture (blobs + stripes), uint8 (h, w, 3)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.zeros((h, w), np.float32)
    for _ in range(6):
        fx, fy, ph = rng.uniform(0.03, 0.25), rng.uniform(0.03, 0.25), rng.uniform(0, 2 * np.pi)
        field += np.sin(fx * xx + fy * yy + ph)
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    idx = field * (len(palette) - 1)
    lo = np.floor(idx).astype(int)
    hi = np.minimum(lo + 1, len(palette) - 1)
    t = (idx - lo)[..., None]
    return ((1 - t) * palette[lo] + t * palette[hi]).clip(0, 255).astype(np.uint8)


def synthetic_clip(width: int = 64, height: int = 48, pan: int = 10, static: int = 5, after_cut: int = 5,
                   seed: int = 0) -> tuple[list[np.ndarray], int]:
    """A test clip: a textured scene panning 1 px/frame (``pan`` frames), then holding still (``static``
    frames), then a cut to a differently coloured panning scene (``after_cut`` frames).

    Returns (uint8 frames (height, width, 3), index of the first frame after the cut).
    """
    rng = np.random.default_rng(seed)
    warm = np.array([[40, 20, 10], [200, 120, 40], [250, 230, 180], [120, 40, 30]], np.float32)
    cold = np.array([[10, 30, 60], [40, 160, 200], [200, 240, 250], [20, 80, 60]], np.float32)
    scene_a = _texture(rng, height, width + pan, warm)
    scene_b = _texture(rng, height, width + after_cut, cold)
    frames = [scene_a[:, i : i + width] for i in range(pan)]
    frames += [frames[-1]] * static
    cut = len(frames)
    frames += [scene_b[:, i : i + width] for i in range(after_cut)]
    return [np.ascontiguousarray(f) for f in frames], cut
