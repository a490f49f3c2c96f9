"""Which styles, alpha and colour option each photo gets: a pure function of the seed, the photo's
relative path and the (sorted) style list, so the result never depends on the order photos are
read in, the number of workers or the engine; a rerun or another machine draws the same.

Every draw is a 64-bit BLAKE2b hash of (seed, path, what is drawn, variant), not a random generator
with state: a generator would tie a photo's draw to the photos drawn before it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

_SCALE = float(1 << 64)


def draw(seed: int, rel: str, field: str, variant: int = 0) -> int:
    """A 64-bit integer fixed by its arguments (the unit separator keeps 'a/b'+'c' apart from 'a'+'b/c')."""
    key = f"{seed}\x1f{rel}\x1f{field}\x1f{variant}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def uniform(seed: int, rel: str, field: str, variant: int = 0) -> float:
    """A number in [0, 1) fixed by its arguments."""
    return draw(seed, rel, field, variant) / _SCALE


def choose_styles(seed: int, rel: str, n_styles: int, k: int) -> list[int]:
    """``k`` distinct style indices out of ``n_styles`` (a partial Fisher-Yates shuffle driven by the hash;
    the swaps live in a dict, so the cost is O(k) whatever the number of styles)."""
    if not 1 <= k <= n_styles:
        raise ValueError(f"cannot choose {k} distinct styles out of {n_styles}")
    swaps: dict[int, int] = {}
    chosen = []
    for j in range(k):
        r = j + draw(seed, rel, "style", j) % (n_styles - j)
        chosen.append(swaps.get(r, r))
        swaps[r] = swaps.get(j, j)
    return chosen


@dataclass(frozen=True)
class Draw:
    """What one output of one photo gets."""

    style: int  # index into the sorted style list (the style bank)
    alpha: float
    preserve_color: bool


def assign(seed: int, rel: str, n_styles: int, k: int, alpha: tuple[float, float], preserve_color: float
           ) -> list[Draw]:
    """The ``k`` outputs of the photo at relative path ``rel``. ``alpha`` (lo, hi) is sampled uniformly and
    rounded to 4 decimals, so the manifest states exactly the alpha that was used; each output keeps its
    colours with probability ``preserve_color``."""
    lo, hi = alpha
    out = []
    for j, s in enumerate(choose_styles(seed, rel, n_styles, k)):
        a = lo if hi == lo else round(lo + (hi - lo) * uniform(seed, rel, "alpha", j), 4)
        keep = preserve_color > 0 and uniform(seed, rel, "color", j) < preserve_color
        out.append(Draw(s, a, keep))
    return out
