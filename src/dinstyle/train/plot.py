"""Pictures of a run, drawn with Pillow only: sample grids and the loss curve."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..io.images import save_image

COLOURS = {"loss": (20, 20, 20), "content": (31, 119, 180), "style": (214, 39, 40), "identity": (44, 160, 44),
           "tv": (148, 103, 189)}
GRID_COLUMNS = ("content", "style", "output", "alpha=0", "teacher")


def sample_grid(rows: Sequence[Sequence[np.ndarray]], path: Path, header: str = "",
                columns: Sequence[str] = GRID_COLUMNS) -> None:
    """Rows of equal-size (H, W, 3) uint8 images -> one PNG with column titles and a header line."""
    if not rows:
        return
    tile = max(rows[0][0].shape[0], 96)  # small training crops are enlarged so titles fit
    h = w = tile
    pad, top = 4, 30
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (cols * (w + pad) + pad, top + len(rows) * (h + pad) + pad), (255, 255, 255))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    draw.text((pad, 2), header, fill=(0, 0, 0), font=font)
    for j, title in enumerate(columns[:cols]):
        draw.text((pad + j * (w + pad), 16), title, fill=(80, 80, 80), font=font)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            im = Image.fromarray(img, "RGB")
            im = im if im.size == (w, h) else im.resize((w, h), Image.NEAREST)
            canvas.paste(im, (pad + j * (w + pad), top + i * (h + pad)))
    save_image(canvas, path)


def _smooth(values: list[float], n: int) -> list[float]:
    """Trailing moving average over n points (n <= 1: unchanged)."""
    if n <= 1:
        return values
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round-number ticks covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _log_ticks(ly0: float, ly1: float) -> list[float]:
    """log10 positions of readable values: 1-2-5 per decade (just powers of ten over many decades), or
    round linear values inside a single decade."""
    if ly1 - ly0 < 1:
        return [math.log10(v) for v in _ticks(10 ** ly0, 10 ** ly1) if v > 0]
    mantissas = (1,) if ly1 - ly0 > 3 else (1, 2, 5)
    values = [m * 10.0 ** k for k in range(math.floor(ly0), math.ceil(ly1) + 1) for m in mantissas]
    return [math.log10(v) for v in values if ly0 <= math.log10(v) <= ly1]


def loss_curve(entries: Sequence[dict], path: Path, width: int = 900, height: int = 500) -> bool:
    """Plot 'loss' and each term against step (log-10 y axis, lightly smoothed); False if nothing to plot."""
    names = [n for n in COLOURS if any(isinstance(e.get(n), (int, float)) for e in entries)]
    series = {n: [(e["step"], float(e[n])) for e in entries
                  if isinstance(e.get(n), (int, float)) and math.isfinite(e[n]) and e[n] > 0] for n in names}
    series = {n: s for n, s in series.items() if s}
    if not series:
        return False
    left, right, top, bottom = 70, 20, 30, 45
    xs = [x for s in series.values() for x, _ in s]
    ys = [math.log10(y) for s in series.values() for _, y in s]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-6:
        y0, y1 = y0 - 0.5, y1 + 0.5
    im = Image.new("RGB", (width, height), (255, 255, 255))
    draw, font = ImageDraw.Draw(im), ImageFont.load_default()
    pw, ph = width - left - right, height - top - bottom

    def to_px(x: float, ly: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (ly - y0) / (y1 - y0)) * ph

    for ly in _log_ticks(y0, y1):
        _, py = to_px(x0, ly)
        draw.line([(left, py), (left + pw, py)], fill=(230, 230, 230))
        draw.text((4, py - 6), f"{10 ** ly:.3g}", fill=(60, 60, 60), font=font)
    for x in _ticks(x0, x1):
        px, _ = to_px(x, y0)
        draw.line([(px, top), (px, top + ph)], fill=(230, 230, 230))
        draw.text((px - 10, top + ph + 6), f"{x:g}", fill=(60, 60, 60), font=font)
    draw.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    window = max(1, len(entries) // 50)
    for k, (name, pts) in enumerate(series.items()):
        smoothed = _smooth([math.log10(y) for _, y in pts], window)
        line = [to_px(x, ly) for (x, _), ly in zip(pts, smoothed)]
        if len(line) > 1:
            draw.line(line, fill=COLOURS[name], width=2)
        else:
            px, py = line[0]
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=COLOURS[name])
        draw.text((left + 10 + 90 * k, 8), name, fill=COLOURS[name], font=font)
    draw.text((left + pw // 2 - 15, height - 18), "step", fill=(0, 0, 0), font=font)
    save_image(im, path)
    return True
