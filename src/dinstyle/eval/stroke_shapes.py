"""Non-natural content images made in code (no files): the test set of the stroke-placement metric (``stroke``).

Three kinds, each mostly flat with some structure, drawn at 2x and downsampled (antialiased edges):
``shapes`` (flat-colour rectangles, ellipses, polygons), ``text`` (lines of text in Pillow's default
font on a flat background) and ``cartoon`` (a gradient sky, flat ground, a house, a tree, a sun and clouds,
all with dark outlines). Deterministic for a given seed.
"""
from __future__ import annotations

import random

import torch
from PIL import Image, ImageDraw, ImageFont

from ..io.images import pil_to_tensor

KINDS = ("shapes", "text", "cartoon")
WORDS = "style stroke flat colour logo brush paint sketch render canvas shape bold line dynamic".split()


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randrange(20, 236) for _ in range(3))


def default_font(px: int):
    """Pillow's built-in font at about ``px`` pixels (the small bitmap font on old Pillow)."""
    try:  # Pillow >= 10.1: the scalable built-in font
        return ImageFont.load_default(size=px)
    except TypeError:  # older Pillow: the small bitmap font
        return ImageFont.load_default()


def draw_shapes(size: int, rng: random.Random) -> Image.Image:
    im = Image.new("RGB", (size, size), _colour(rng))
    d = ImageDraw.Draw(im)
    for _ in range(rng.randint(4, 7)):
        x0, y0 = rng.randrange(0, size * 3 // 4), rng.randrange(0, size * 3 // 4)
        x1, y1 = x0 + rng.randrange(size // 6, size // 2), y0 + rng.randrange(size // 6, size // 2)
        kind = rng.choice(("rect", "ellipse", "poly"))
        if kind == "rect":
            d.rectangle((x0, y0, x1, y1), fill=_colour(rng))
        elif kind == "ellipse":
            d.ellipse((x0, y0, x1, y1), fill=_colour(rng))
        else:
            d.polygon([(rng.randrange(x0, x1), rng.randrange(y0, y1)) for _ in range(rng.randint(3, 5))],
                      fill=_colour(rng))
    return im


def draw_text(size: int, rng: random.Random) -> Image.Image:
    bg = _colour(rng)
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    ink = tuple(255 - c for c in bg)  # always contrasts with the background
    y = size // 10
    for px in (size // 7, size // 11, size // 14):
        font = default_font(px)
        d.text((size // 12, y), " ".join(rng.sample(WORDS, 2)), fill=ink, font=font)
        y += int(px * 1.8)
    d.rectangle((size // 12, size * 3 // 4, size * 11 // 12, size * 3 // 4 + size // 40), fill=ink)  # a rule
    return im


def draw_cartoon(size: int, rng: random.Random) -> Image.Image:
    im = Image.new("RGB", (size, size))
    d = ImageDraw.Draw(im)
    top, bottom = (rng.randrange(60, 120), rng.randrange(140, 200), 255), (200, 230, 255)
    horizon = size * 2 // 3
    for yy in range(horizon):  # smooth sky gradient: flat for the high-pass, not one colour
        t = yy / horizon
        d.line((0, yy, size, yy), fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    ink, lw = (25, 25, 25), max(2, size // 80)
    d.rectangle((-lw, horizon, size + lw, size + lw), fill=(rng.randrange(60, 120), rng.randrange(150, 200), 60),
                outline=ink, width=lw)
    s = size // 8
    d.ellipse((size - 2 * s, s // 2, size - s, s * 3 // 2), fill=(255, 210, 60), outline=ink, width=lw)  # sun
    for _ in range(2):  # clouds
        cx, cy = rng.randrange(s, size - 3 * s), rng.randrange(s // 2, 2 * s)
        d.ellipse((cx, cy, cx + 2 * s, cy + s), fill=(250, 250, 250), outline=ink, width=lw)
    hx, hw = rng.randrange(s, size // 2 - s), 3 * s
    d.rectangle((hx, horizon - 2 * s, hx + hw, horizon + s // 2), fill=_colour(rng), outline=ink, width=lw)
    d.polygon([(hx - s // 3, horizon - 2 * s), (hx + hw // 2, horizon - 3 * s - s // 2),
               (hx + hw + s // 3, horizon - 2 * s)], fill=_colour(rng), outline=ink, width=lw)
    d.rectangle((hx + hw // 3, horizon - s // 2, hx + hw // 3 + s * 2 // 3, horizon + s // 2),
                fill=(110, 70, 40), outline=ink, width=lw)  # door
    tx = rng.randrange(size // 2 + s, size - 2 * s)
    d.rectangle((tx, horizon - s, tx + s // 2, horizon + s // 2), fill=(120, 80, 40), outline=ink, width=lw)
    d.ellipse((tx - s, horizon - 3 * s, tx + s * 3 // 2, horizon - s // 2), fill=(40, 140, 50),
              outline=ink, width=lw)
    return im


DRAW = {"shapes": draw_shapes, "text": draw_text, "cartoon": draw_cartoon}


def synthetic_image(kind: str, size: int = 256, seed: int = 0) -> torch.Tensor:
    """One (1, 3, size, size) image in [0, 1] of ``kind`` (shapes | text | cartoon)."""
    if kind not in DRAW:
        raise ValueError(f"unknown synthetic kind {kind!r}; choose from {', '.join(KINDS)}")
    if size < 32:
        raise ValueError(f"synthetic images need size >= 32, got {size}")
    im = DRAW[kind](2 * size, random.Random(f"{kind}:{seed}"))
    return pil_to_tensor(im.resize((size, size), Image.LANCZOS))


def synthetic_set(size: int = 256, per_kind: int = 2, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """``per_kind`` images of every kind, named ``kind-N``."""
    return [(f"{k}-{i}", synthetic_image(k, size, seed + i)) for k in KINDS for i in range(per_kind)]
