"""Running the content path on a device, the one path for images and video frames alike: a ``RunRequest`` in,
the image out. Around the network, from the outside in:

1. the restore (alpha < 1): a second pass at alpha 0, and ``(1 - alpha) x (photo - that pass)`` added back;
2. the stroke scale: the network runs on the image shrunk by ``request.scale`` (``runtime.scale``), or on two
   sizes mixed by a stroke map;
3. whole image when it fits the memory (``runtime.memory``: the model's measured bytes per pixel against
   the available memory) or the caller's ``max_pixels_untiled``, else tiles; when memory runs out, smaller tiles.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Optional, Sequence

import torch

from ..defaults import dither_noise
from ..errors import DinstyleError
from ..layers.din import instance_stats
from ..models.base import StyleTransferNet
from .controls import LARGE, SMALL
from .engine import engine_input, engine_output
from .request import MIN_TILE, RunRequest, Smooth, split_progress
from .scale import run_scaled
from .memory import tile_pixel_budget, untiled_pixel_budget
from .tiling import stylize_tiled, tile_for_budget


def is_oom(e: BaseException) -> bool:
    """CUDA/MPS out-of-memory errors and the CPU allocator's failure all count (the one test: the server's too)."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                            or "not enough memory" in msg)


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def run_model(model: StyleTransferNet, x: torch.Tensor, request: RunRequest) -> torch.Tensor:
    """``request`` run on ``x`` ((B, 3, H, W) float in [0, 1], on the CPU or the model's device). Returns float32
    on ``x``'s device, unclamped; a result with NaN or inf is refused.

    The restore (``request.restore``, alpha < 1) adds back ``(1 - alpha) * (x - y0)``, where ``y0`` is the
    model's own output at alpha 0, its reconstruction of the photo: what the network loses of the photo (detail,
    exact colours), so alpha 0 returns the photo itself and the alphas between keep the model's own
    interpolation of the style (docs/USAGE.md). It costs a second content pass; alpha 0 needs none."""
    alpha = request.alpha
    fixed_alpha = not torch.is_tensor(alpha)
    if request.restore and fixed_alpha and alpha <= 0.0:
        return x.float().clone()
    p = next(model.parameters())
    codes = [c.to(p.device, p.dtype) for c in request.codes]
    # read once from the whole image, before any scaling or tiling: every tile and pass blends towards it
    # (dithered as the passes see it, as the exported graph, which reads it from its own input, does too)
    anchor = model.content_code(dithered(x, request.dither)) if not fixed_alpha or alpha < 1.0 else None
    alphas = [alpha] if not request.restore or (fixed_alpha and alpha >= 1.0) else [alpha, 0.0]
    scales = [request.scale] if request.scale_map is None else [request.scale * SMALL, request.scale * LARGE]
    # the pass at the photo's own size is scale 1's when there is one, else an extra pass for the fine band
    own = scales.index(1.0) if 1.0 in scales else None
    extra = own is None and _needs_native(scales, request.detail_scale)
    parts = iter(split_progress(request.progress, len(alphas) * (len(scales) + extra)))
    outs = []
    for i, a in enumerate(alphas):
        pass_codes = model.codes_at_alpha(codes, a, anchor=anchor)  # alpha applied: the passes run at 1
        smooth = request.smooth if i == 0 else _own_state(request.smooth, "alpha0")
        at_alpha = dataclasses.replace(request, codes=pass_codes, alpha=1.0)
        progress = [next(parts) for _ in range(len(scales) + extra)]
        states = [_own_state(smooth, f"scale{j}") if j else smooth for j in range(len(scales))]
        native = _native_pass(model, x, dataclasses.replace(  # scale 1's own pass, or the extra one (last)
            at_alpha, progress=progress[-1 if own is None else own],
            smooth=_own_state(smooth, "native") if own is None else states[own]))
        per_scale = [_finite(_scaled_pass(model, x, dataclasses.replace(at_alpha, progress=progress[j],
                                                                        smooth=states[j]), s, native))
                     for j, s in enumerate(scales)]
        outs.append(per_scale[0] if len(per_scale) == 1 else _mix(per_scale, request.scale_map))
    if len(outs) == 1:
        return outs[0]
    # on the images as they are shown, clamped (as the exported graph, and so dinstyle.lite, gives them)
    return outs[0].clamp(0, 1) + (1.0 - alpha) * (x.to(outs[0]) - outs[1].clamp(0, 1))


def _mix(outs: list[torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """A stroke map's two passes: ``v`` = 0 takes the small strokes, 1 the large ones."""
    v = v.to(outs[0])
    return outs[0] * (1 - v) + outs[1] * v


def _own_state(smooth: Optional[Smooth], name: str) -> Optional[Smooth]:
    """Another pass of the same frame (alpha 0, a second stroke scale) keeps its own smoothed statistics, under
    other level names: its features differ."""
    if smooth is None:
        return None
    return lambda level, mean, std: smooth(f"{name}/{level}", mean, std)


def _finite(y: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(y).all()):
        raise DinstyleError("the model produced NaN or inf: its weights or the style code hold extreme values "
                            "(a damaged or diverged model file?)")
    return y


@functools.lru_cache(maxsize=2)  # a video's frames: the small pass's noise and the native pass's
def _noise(h: int, w: int, sigma: float) -> torch.Tensor:
    return torch.from_numpy(dither_noise(h, w, sigma))


def dithered(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A pass's input with the fixed dither added (``defaults.DITHER``: flat areas get even texture)."""
    if sigma <= 0:
        return x
    return (x + _noise(*x.shape[-2:], float(sigma)).to(x)).clamp(0, 1)


def _needs_native(scales: Sequence[float], detail_scale: Optional[float]) -> bool:
    """Whether some scale runs the network at the photo's own size: itself (scale 1) or for its detail."""
    return any(s == 1.0 or min(s, s if detail_scale is None else detail_scale) > 1.0 for s in scales)


def _native_pass(model, x: torch.Tensor, request: RunRequest):
    """The network at the photo's own size, run once when first asked for and shared by the scales that need it
    (scale 1 itself, the fine band of the others): its own smoothed statistics, the full-size masks."""
    memo: list[torch.Tensor] = []

    def native() -> torch.Tensor:
        if not memo:
            memo.append(_finite(_run(model, dithered(x, request.dither), request)))
        return memo[0]
    return native


def _scaled_pass(model, x: torch.Tensor, request: RunRequest, scale: float, native) -> torch.Tensor:
    """One pass at one stroke scale; masks and a stroke map travel with the image through the resize."""
    maps = [*(request.masks or []), *([request.stroke] if torch.is_tensor(request.stroke) else [])]
    n = len(request.masks or [])

    def run(xs: torch.Tensor, ms: Optional[Sequence[torch.Tensor]]) -> torch.Tensor:
        ms = list(ms or [])
        return _run(model, dithered(xs, request.dither), dataclasses.replace(request, masks=ms[:n] or None,
                                                   stroke=ms[n] if len(ms) > n else request.stroke))

    return run_scaled(run, x, scale, maps or None, detail_scale=request.detail_scale, native=native)


def _run(model, x: torch.Tensor, request: RunRequest) -> torch.Tensor:
    """One pass of the network as the request's codes and alpha say (already blended by ``codes_at_alpha``):
    whole, or in tiles when too large for the memory (or the caller's limit) or out of memory."""
    p = next(model.parameters())
    h, w = x.shape[-2:]
    tile = request.tile if request.tile is not None else _tile_for(model, x, request)
    while True:  # tile None: the whole image in one piece
        try:
            if tile is None:
                return _run_whole(model, x, request)
            return stylize_tiled(model, x, dataclasses.replace(request, tile=tile))
        except Exception as e:
            if not is_oom(e):
                raise
            _free(p.device)
            tile = _smaller_tile(model, request.codes[0], tile, w, h)


def _tile_for(model, x: torch.Tensor, request: RunRequest) -> int | None:
    """None (one piece) when the image fits, else the tile size. An explicit ``max_pixels_untiled`` is a limit on
    one image's pixels, as it always was; without one, the batch's pixels are held against what the memory
    takes in one pass (``memory.untiled_pixel_budget``), and tiles are as large as the same rule allows with
    the tiled image itself in memory too."""
    (b, _, h, w), code = x.shape, request.codes[0]
    if request.max_pixels_untiled is not None:
        limit = request.max_pixels_untiled
        return None if h * w <= limit else tile_for_budget(model, code, limit)
    if b * h * w <= untiled_pixel_budget(model, code=code):
        return None
    same_memory = x.device == next(model.parameters()).device  # the assembled image lives with the tiles
    per_tile = tile_pixel_budget(model, b * h * w if same_memory else 0, code=code) // b
    return tile_for_budget(model, code, max(1, per_tile))


def _run_whole(model, x: torch.Tensor, request: RunRequest) -> torch.Tensor:
    p = next(model.parameters())
    on_dev = lambda t: t.to(p.device, p.dtype)  # noqa: E731
    smooth = request.smooth

    def stats_fn(level: str, f: torch.Tensor):
        request.check_cancel()  # between DIN levels: an abandoned request stops within one level
        return None if smooth is None else smooth(level, *instance_stats(f, model.dins[level].eps))

    masks, stroke = request.masks, request.stroke
    y = model.stylize(engine_input(on_dev(x)), request.codes,
                      masks=None if masks is None else [on_dev(m) for m in masks],
                      stroke=on_dev(stroke) if torch.is_tensor(stroke) else stroke, stats_fn=stats_fn)
    return engine_output(y.to(x.device, torch.float32))


def _smaller_tile(model, code, tile: int | None, w: int, h: int) -> int:
    """The tile size to retry with after running out of memory in ``tile``-px tiles (None: in one piece).
    Warnings point at the caller of ``run_model`` (stacklevel 5)."""
    if tile is None:  # tiles of half the image's pixels (halo included)
        tile = tile_for_budget(model, code, h * w // 2)
        warnings.warn(f"out of memory for {w}x{h} in one piece: retrying in {tile}-px tiles", stacklevel=5)
        return tile
    if tile <= MIN_TILE:
        raise DinstyleError(f"out of memory even in {tile}-px tiles ({w}x{h}); try a smaller --max-size") from None
    warnings.warn(f"out of memory: retrying in {tile // 2}-px tiles", stacklevel=5)
    return tile // 2
