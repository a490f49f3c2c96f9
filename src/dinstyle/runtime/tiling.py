"""Full resolution in bounded memory: overlapping tiles, blended seams, whole-image statistics.

A tile stylized on its own would normalise with its *own* instance-norm statistics, so neighbouring
tiles would disagree in colour and contrast. The content path normalises only at the DIN levels
(``model.dins``, called in a fixed order), so the whole image's statistics can be computed exactly,
level by level: pass k runs every tile with the statistics of levels < k already fixed and sums the
pre-norm features of level k over each tile's core (the tiles' cores partition the image), then
stops that tile early. A last pass runs every tile with all statistics fixed and blends the cores,
feathered over a few pixels of overlap. Each tile carries a halo at least as wide as the model's
receptive field (measured once per model by back-propagation), so the core of a tile sees exactly
what the whole image would show it: tiled == untiled up to float rounding.

Tiles start on multiples of ``model.pad_multiple`` so strided and upsampling layers stay on the same
grid as in the untiled run.
"""
from __future__ import annotations

import weakref
from functools import partial

import torch

from ..models.base import StyleTransferNet, pad_to_multiple
from ..models.stylecode import StyleCode
from .engine import engine_input, engine_output
from .request import MIN_TILE, RunRequest  # noqa: F401  (MIN_TILE: the smallest tile, shared with the runner)

Box = tuple[int, int, int, int]  # y0, y1, x0, x1
DEFAULT_TILE = 1024
DEFAULT_BLEND = 16
MAX_RADIUS = 512
_RADII: "weakref.WeakKeyDictionary[StyleTransferNet, int]" = weakref.WeakKeyDictionary()  # receptive_radius's


class _StopTile(Exception):
    """Raised inside the stats hook once the level being measured has been summed: the rest is not needed."""


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def receptive_radius(model: StyleTransferNet, code: StyleCode, limit: int = MAX_RADIUS) -> int:
    """How far (pixels) an output pixel 'sees' into the content, with the statistics held fixed.

    Found by back-propagating one output pixel to the input: nothing is assumed about the layers.
    Measured once per model (``_RADII``, which holds no model alive). Capped at ``limit``.
    """
    if model in _RADII:
        return _RADII[model]
    p = next(model.parameters())
    m, size, radius = model.pad_multiple, 256, limit
    fixed = lambda level, f: (f.new_zeros(()), f.new_ones(()))  # noqa: E731  (no whole-map coupling)
    with torch.inference_mode(False), torch.enable_grad():
        c = StyleCode({k: v.detach().clone() for k, v in code.select(0).tensors.items()})
        while size <= 2 * limit:
            # A tall, narrow probe is enough (the layers treat rows and columns alike) and 8x cheaper.
            gen = torch.Generator().manual_seed(0)
            x = torch.rand(1, 3, size, 4 * m, generator=gen).to(p.device, p.dtype).requires_grad_(True)
            y = model.stylize(x, c, stats_fn=fixed)
            (g,) = torch.autograd.grad(y[..., size // 2, 2 * m].sum(), x)
            rows = torch.nonzero((g != 0).any(-1).any(1)[0])[:, 0]  # NaN counts as reached
            r = int((rows - size // 2).abs().max()) if len(rows) else 0
            if r < size // 2 - m:  # the support ends inside the probe: that is the radius
                radius = min(limit, r + m)  # margin: a dead ReLU may hide the outermost ring
                break
            size *= 2
    _RADII[model] = radius
    return radius


def plan_tiles(h: int, w: int, tile: int, halo: int, multiple: int = 1) -> list[tuple[Box, Box]]:
    """(core, tile) boxes: cores of at most ``tile`` px (balanced, multiples of ``multiple``) partition the
    h x w image; tiles add ``halo`` on each side (clipped to the image)."""
    def cores(n: int) -> list[tuple[int, int]]:
        step = _round_up(-(-n // -(-n // tile)), multiple)  # ceil(n / number of tiles), on the grid
        return [(a, min(a + step, n)) for a in range(0, n, step)]

    return [((y0, y1, x0, x1), (max(0, y0 - halo), min(h, y1 + halo), max(0, x0 - halo), min(w, x1 + halo)))
            for y0, y1 in cores(h) for x0, x1 in cores(w)]


def tile_for_budget(model: StyleTransferNet, code: StyleCode, max_pixels: int, blend: int = DEFAULT_BLEND) -> int:
    """The largest core size whose tile (core + halo on both sides) stays within ``max_pixels``."""
    halo = _round_up(receptive_radius(model, code) + blend, model.pad_multiple)
    side = int(max_pixels ** 0.5) - 2 * halo
    return max(MIN_TILE, side // model.pad_multiple * model.pad_multiple)


def _window(core: Box, box: Box, blend: int) -> torch.Tensor:
    """(1, 1, th, tw) weights: 1 on the core, fading linearly to 0 over ``blend`` pixels of halo."""
    def ramp(c0: int, c1: int, b0: int, b1: int) -> torch.Tensor:
        pos = torch.arange(b0, b1, dtype=torch.float32)
        dist = torch.clamp(c0 - pos, min=0) + torch.clamp(pos - (c1 - 1), min=0)
        return torch.clamp(1 - dist / (blend + 1), min=0)

    return (ramp(core[0], core[1], box[0], box[1])[:, None] * ramp(core[2], core[3], box[2], box[3])[None, :])[None, None]


@torch.inference_mode()
def stylize_tiled(model: StyleTransferNet, content: torch.Tensor, request: RunRequest, halo: int | None = None,
                  blend: int = DEFAULT_BLEND) -> torch.Tensor:
    """``model.stylize`` for images of any size, in tiles of ``request.tile`` x ``request.tile`` pixels (plus
    halo; default ``DEFAULT_TILE``), with the request's codes, alpha, masks and stroke. Alpha moves the codes
    once, towards the whole image's own code (``codes_at_alpha``): every tile runs the same codes.

    ``content`` (B, 3, H, W) may live on the CPU; each tile is moved to the model's device and dtype and
    the result is assembled on ``content``'s device in float32. Masks and a stroke map are cropped along.
    ``request.progress(done, total)`` is called after every tile run (statistics passes included), ``cancel``
    checked before each; ``request.smooth(level, mean, std)`` may replace each level's whole-image statistics
    (video: time-smoothed).
    """
    tiles = _Tiles(model, content, request, halo, blend)
    return tiles.blend(tiles.whole_image_stats(request.smooth))


class _Tiles:
    """One tiled run: the padded inputs, the tile plan and the progress count that every pass shares."""

    def __init__(self, model: StyleTransferNet, content: torch.Tensor, request: RunRequest, halo: int | None,
                 blend: int):
        p = next(model.parameters())
        self.model, self.request, self.blend_px = model, request, blend
        # once, not per tile; alpha read from the whole image (the runner's passes come blended, at alpha 1)
        self.codes = model.codes_at_alpha([c.to(p.device) for c in request.codes], request.alpha, content)
        self.device, self.dtype, self.out_device = p.device, p.dtype, content.device
        m = model.pad_multiple
        self.batch, (self.h, self.w) = content.shape[0], content.shape[-2:]
        self.x, _ = pad_to_multiple(content, m)
        masks, stroke = request.masks, request.stroke
        self.masks = None if masks is None else [pad_to_multiple(mk, m)[0] for mk in masks]
        self.stroke = pad_to_multiple(stroke, m)[0] if torch.is_tensor(stroke) else stroke
        if halo is None:
            halo = receptive_radius(model, self.codes[0]) + blend
        self.hp, self.wp = self.x.shape[-2:]
        tile = request.tile or DEFAULT_TILE
        self.boxes = plan_tiles(self.hp, self.wp, max(m, _round_up(tile, m)), _round_up(max(halo, blend), m), m)
        self.done, self.total = 0, len(self.boxes) * (len(model.dins) + 1)  # a pass per DIN level, then the last

    def run(self, box: Box, stats_fn) -> torch.Tensor:
        """The model on one tile (moved to its device); counts towards ``progress`` even when stopped early."""
        crop = lambda t: t[..., box[0]:box[1], box[2]:box[3]].to(self.device, self.dtype)  # noqa: E731
        self.request.check_cancel()
        try:
            return engine_output(self.model.stylize(engine_input(crop(self.x)), self.codes,
                                      masks=None if self.masks is None else [crop(mk) for mk in self.masks],
                                      stats_fn=stats_fn,
                                      stroke=crop(self.stroke) if torch.is_tensor(self.stroke) else self.stroke))
        finally:
            self.done += 1
            if self.request.progress:
                self.request.progress(self.done, self.total)

    def whole_image_stats(self, smooth) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """(mean, std) of every DIN level over the whole image, one level per pass (each depends on the last)."""
        fixed: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        while len(fixed) < len(self.model.dins):
            sums = self._measure_next_level(fixed)
            if sums is None:
                break
            fixed[sums.level] = sums.mean_std(self.model.dins[sums.level].eps, self.device, self.dtype)
            if smooth is not None:
                fixed[sums.level] = smooth(sums.level, *fixed[sums.level])
        return fixed

    def _measure_next_level(self, fixed: dict) -> _LevelSums | None:
        """Sums of the first level not in ``fixed`` over every tile's core; None when no such level is called."""
        sums = _LevelSums(fixed)
        for core, box in self.boxes:
            try:
                self.run(box, partial(sums.add, core, box))
            except _StopTile:
                pass
            if sums.level is None:  # a tile ran through: every level that is called is already fixed
                return None
        return sums

    def blend(self, fixed: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Every tile with the whole-image statistics, cores feathered together over ``blend`` px of halo."""
        out = torch.zeros(self.batch, 3, self.hp, self.wp, device=self.out_device)
        weight = torch.zeros(1, 1, self.hp, self.wp, device=self.out_device)
        for core, box in self.boxes:
            y = self.run(box, lambda level, _f: fixed.get(level)).to(self.out_device, torch.float32)
            win = _window(core, box, self.blend_px).to(self.out_device)
            out[..., box[0]:box[1], box[2]:box[3]] += y * win
            weight[..., box[0]:box[1], box[2]:box[3]] += win
        return (out / weight)[..., :self.h, :self.w]


class _LevelSums:
    """Stats hook of one measuring pass: levels in ``fixed`` get their statistics, the first other level is
    summed over the tile's core (its pre-norm features, in float64) and the tile stops there."""

    def __init__(self, fixed: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        self.fixed = fixed
        self.level: str | None = None  # the level this pass measures, set by the first tile
        self.sums: torch.Tensor | None = None  # stacked per-channel sum and sum of squares
        self.count = 0  # pixels summed, per channel

    def add(self, core: Box, box: Box, level: str, f: torch.Tensor):
        if level in self.fixed:
            return self.fixed[level]
        if self.level is None:
            self.level = level
        elif level != self.level:
            raise RuntimeError(f"DIN level order varies between tiles ({self.level} vs {level})")
        s = (box[1] - box[0]) // f.shape[-2]  # this level's stride in image pixels
        a, b = (core[0] - box[0]) // s, (core[1] - box[0]) // s
        c, d = (core[2] - box[2]) // s, (core[3] - box[2]) // s
        region = f[..., a:b, c:d].double()
        part = torch.stack([region.sum((2, 3)), region.square().sum((2, 3))])
        self.sums = part if self.sums is None else self.sums + part
        self.count += region[0, 0].numel()
        raise _StopTile

    def mean_std(self, eps: float, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        s1, s2 = self.sums
        mean = s1 / self.count
        var = (s2 / self.count - mean.square()).clamp(min=0)
        std = (var + eps).sqrt()
        shape = (*mean.shape, 1, 1)
        return mean.view(shape).to(device, dtype), std.view(shape).to(device, dtype)
