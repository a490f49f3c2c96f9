"""Temporal stability for video: smoothed DIN statistics, change-aware blending that follows the camera,
scene cuts, and a flicker metric (plus the generated clip it is measured on).

A feed-forward stylizer sees every frame alone, so tiny input changes (codec noise, a 1-px pan) move the
instance-norm statistics and the painted texture, and the output flickers. ``TemporalSmoother`` fights that
with one knob, ``strength`` T in [0, 1] (0 = independent frames):

* statistics: each DIN level normalises with an exponential moving average of the per-frame mean/std,
  ``m_t = b*m_{t-1} + (1-b)*s_t`` with ``b = 0.9*T`` (a ~10-frame memory at T=1), held on still frames;
* output: ``o_t = w*o_{t-1} + (1-w)*y_t`` per pixel, with ``w = T*clamp(1 - d/tau, 0, 1)`` (no T factor on
  a still frame, so a held shot stops changing) and ``d`` the input change (max over RGB, dilated 3x3)
  measured against the *blended reference input* ``r`` (blended with the same ``w``), so a slowly drifting
  input cannot accumulate lag: once the output lags, ``d`` grows;
* motion: before blending, ``o_{t-1}`` and ``r`` are moved by the global translation between the input
  frames (phase correlation), so on a pan the texture travels with the scene instead of being repainted.

Everything resets at scene cuts (thumbnail difference above ``cut_threshold``): nothing smears across one.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..defaults import check_range
from ..layers.din import EPS, instance_stats

STATS_MOMENTUM = 0.9  # EMA factor of the DIN statistics at strength 1
CHANGE_SCALE = 0.08  # input change (in [0,1] units) at which blending with the previous output stops
CUT_THRESHOLD = 0.1  # mean abs difference of 32x32 thumbnails that marks a scene cut
STILL_THRESHOLD = 0.5 / 255  # ... and below which the frame has not changed (codec noise averages out)
THUMB = 32
MOTION_SIZE = 512  # global motion is estimated on frames shrunk to at most this long side
MOTION_PEAK = 10.0  # phase-correlation peak / its std needed to trust a global motion (noise max ~5)


def check_temporal(temporal: float) -> float:
    """The one rule for ``temporal`` (API and CLI)."""
    return check_range(temporal, 0.0, 1.0, "temporal")


def check_cut_threshold(threshold: float) -> float:
    """The scene-cut threshold is a mean absolute difference of [0, 1] images, so 0 to 1 (0 = every frame is a
    cut, 1 = never)."""
    return check_range(threshold, 0.0, 1.0, "cut threshold")


class SceneCutDetector:
    """Mean absolute difference between consecutive frames' low-resolution thumbnails (stateful)."""

    def __init__(self):
        self.prev: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> list[float]:
        """``x`` (B, 3, H, W) in [0, 1] -> one difference per frame (inf for the first frame or a new size)."""
        thumbs = F.adaptive_avg_pool2d(x.float(), THUMB)
        diffs = (thumbs[1:] - thumbs[:-1]).abs().mean(dim=(1, 2, 3)).tolist()
        first = float("inf") if self.prev is None or self.prev.shape != thumbs[0].shape else \
            (thumbs[0] - self.prev).abs().mean().item()
        self.prev = thumbs[-1]
        return [first, *diffs]


class TemporalSmoother:
    """Carries state from frame to frame (and batch to batch) for one video.

    Per batch: ``cuts = begin(x)``, then ``model.stylize(x, code, stats_fn=smoother.stats_fn)``, then
    ``out = smoother.blend(x, y)``. Frames in a batch are handled in order, so any batch size gives the same
    result as batch size 1.
    """

    def __init__(self, strength: float = 0.0, cut_threshold: float = CUT_THRESHOLD):
        self.strength = strength = check_temporal(strength)
        check_cut_threshold(cut_threshold)
        self.momentum = STATS_MOMENTUM * strength
        self.cut_threshold = cut_threshold
        self.diffs = SceneCutDetector()
        self.batch_cuts: list[bool] = []
        self.batch_still: list[bool] = []  # frames identical to the previous one (up to codec noise)
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.prev_out: torch.Tensor | None = None  # (1, 3, H, W) last blended output
        self.prev_ref: torch.Tensor | None = None  # (1, 3, H, W) the input that output stands for
        self.prev_in: torch.Tensor | None = None  # (1, 3, H, W) the previous input frame

    @property
    def active(self) -> bool:
        return self.strength > 0.0

    def begin(self, x: torch.Tensor) -> list[bool]:
        """Detect cuts in a new batch (B, 3, H, W); call before stylizing it."""
        diffs = self.diffs(x)
        self.batch_cuts = [d > self.cut_threshold for d in diffs]
        self.batch_still = [d < STILL_THRESHOLD for d in diffs]
        return self.batch_cuts

    def stats_fn(self, level: str, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """DIN hook: the time-smoothed (mean, std) for each frame of the batch at this level."""
        if not self.active:
            return None
        return self.smooth(level, *instance_stats(feats, EPS))

    def smooth(self, level: str, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each frame's own (mean, std) (B, C, 1, 1) at a DIN level -> the time-smoothed ones (tiled frames
        pass their whole-frame statistics here)."""
        if not self.active:
            return mean, std
        if len(self.batch_cuts) != mean.shape[0]:
            raise RuntimeError("TemporalSmoother.begin() was not called for this batch")
        b = self.momentum
        prev = self.stats.get(level)
        means, stds = [], []
        for i, (cut, still) in enumerate(zip(self.batch_cuts, self.batch_still)):
            m, s = mean[i : i + 1], std[i : i + 1]
            if prev is not None and not cut and prev[0].shape == m.shape:
                # a still frame keeps the statistics, so a static shot is not still settling
                m, s = prev if still else (b * prev[0] + (1 - b) * m, b * prev[1] + (1 - b) * s)
            prev = (m, s)
            means.append(m)
            stds.append(s)
        self.stats[level] = prev
        return torch.cat(means), torch.cat(stds)

    def blend(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mix each stylized frame ``y`` with the previous output where the input ``x`` did not change
        (after following the camera's global motion)."""
        if not self.active:
            return y
        outs = []
        for i, (cut, still) in enumerate(zip(self.batch_cuts, self.batch_still)):
            xi, yi = x[i : i + 1], y[i : i + 1]
            if cut or self.prev_out is None or self.prev_out.shape != yi.shape:
                out, ref = yi, xi
            else:
                prev_out, prev_ref, valid = self.prev_out, self.prev_ref, None
                shift = None if still else global_shift(self.prev_in, xi)
                if shift is not None:  # a pan: compare with the previous frame moved along with it
                    (prev_out, prev_ref), valid = shift_frames([prev_out, prev_ref], shift)
                change = (xi - prev_ref).abs().amax(dim=1, keepdim=True)
                change = F.max_pool2d(change, 3, stride=1, padding=1)  # no ghost halos beside moving edges
                # a still frame keeps the output too (a held shot must not keep converging)
                w = (1.0 if still else self.strength) * (1.0 - change / CHANGE_SCALE).clamp(0.0, 1.0)
                w = w if valid is None else w * valid
                out = yi + w * (prev_out - yi)
                ref = xi + w * (prev_ref - xi)
            self.prev_out, self.prev_ref, self.prev_in = out, ref, xi
            outs.append(out)
        return torch.cat(outs)


# ---------------------------------------------------------------------------------------- global motion
def _gray(x: torch.Tensor) -> torch.Tensor:
    g = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[0]
    return g - g.mean()


def global_shift(prev: torch.Tensor, cur: torch.Tensor) -> tuple[float, float] | None:
    """The (dy, dx) translation with ``cur(p) ~ prev(p - shift)``, by phase correlation (sub-pixel), or None
    when there is no clear single motion (a zoom, parallax, a static frame, noise)."""
    k = max(1, -(-max(cur.shape[-2:]) // MOTION_SIZE))  # estimate on a <= MOTION_SIZE image, scale back
    a, b = (F.avg_pool2d(t.float(), k) if k > 1 else t.float() for t in (prev, cur))
    h, w = a.shape[-2:]
    if min(h, w) < 16:
        return None
    hann = lambda n: torch.hann_window(n, periodic=False, device=a.device)  # noqa: E731
    win = hann(h)[:, None] * hann(w)[None]  # no wrap-around edges in the FFT
    fa, fb = torch.fft.rfft2(_gray(a) * win), torch.fft.rfft2(_gray(b) * win)
    r = fb * fa.conj()
    corr = torch.fft.irfft2(r / (r.abs() + 1e-9), s=(h, w))
    idx = int(corr.argmax())
    py, px = divmod(idx, w)
    peak = corr[py, px]
    if peak < MOTION_PEAK * corr.std():
        return None

    def refine(m1: torch.Tensor, m0: torch.Tensor, p1: torch.Tensor) -> float:  # parabola through 3 samples
        den = float(m1 - 2 * m0 + p1)
        return 0.0 if abs(den) < 1e-12 else max(-0.5, min(0.5, 0.5 * float(m1 - p1) / den))

    dy = py + refine(corr[(py - 1) % h, px], peak, corr[(py + 1) % h, px])
    dx = px + refine(corr[py, (px - 1) % w], peak, corr[py, (px + 1) % w])
    dy, dx = (dy + h / 2) % h - h / 2, (dx + w / 2) % w - w / 2  # wrap to signed
    if abs(dy) < 0.05 and abs(dx) < 0.05:
        return None
    return dy * k, dx * k


def shift_frames(frames: list[torch.Tensor], shift: tuple[float, float]
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Move (1, C, H, W) frames by ``shift`` = (dy, dx) pixels (bilinear); also the (1, 1, H, W) mask of
    pixels that came from inside the frame."""
    h, w = frames[0].shape[-2:]
    dy, dx = shift
    ys = torch.arange(h, device=frames[0].device, dtype=torch.float32) - dy
    xs = torch.arange(w, device=frames[0].device, dtype=torch.float32) - dx
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([2 * gx / max(w - 1, 1) - 1, 2 * gy / max(h - 1, 1) - 1], -1)[None]
    moved = [F.grid_sample(f, grid.to(f.dtype), mode="bilinear", padding_mode="border", align_corners=True)
             for f in frames]
    valid = ((gx >= 0) & (gx <= w - 1) & (gy >= 0) & (gy <= h - 1)).to(frames[0].dtype)[None, None]
    return moved, valid


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
