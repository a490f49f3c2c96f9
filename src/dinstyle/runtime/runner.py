"""Running the content path on a device: whole image when it is small, tiles when it is large or when
memory runs out (then smaller and smaller tiles). Images and video frames both come through here."""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch

from ..errors import DinstyleError
from ..layers.din import instance_stats
from ..models.base import StyleTransferNet
from ..models.stylecode import StyleCode
from .tiling import MIN_TILE, stylize_tiled, tile_for_budget

# Above this many pixels an image is tiled, in tiles (halo included) of at most this many pixels, so
# one number bounds the working memory. din-mobilenet-vgg needs ~0.5 KB of RAM per pixel on the CPU
# (float32; see docs/USAGE.md): 8.4 MP stays near 4 GB whatever the image size.
DEFAULT_MAX_PIXELS_UNTILED = 8_388_608  # 2**23, e.g. 4096 x 2048
Smooth = Callable[[str, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def is_oom(e: BaseException) -> bool:
    """CUDA/MPS out-of-memory errors and the CPU allocator's failure all count."""
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


def run_model(model: StyleTransferNet, x: torch.Tensor, codes: Sequence[StyleCode], alpha: float = 1.0,
              masks: Sequence[torch.Tensor] | None = None, stroke: float | torch.Tensor | None = None,
              tile: int | None = None, max_pixels_untiled: int = DEFAULT_MAX_PIXELS_UNTILED,
              progress: Callable[[int, int], None] | None = None, smooth: Smooth | None = None,
              restore: bool = True) -> torch.Tensor:
    """``model.stylize`` on ``x`` ((B, 3, H, W) float in [0, 1], on the CPU or the model's device), the one
    path for images and video frames alike: whole when small, tiled above ``max_pixels_untiled`` or when
    memory runs out. ``smooth(level, mean, std)`` replaces each DIN level's statistics (video: smoothed
    over time). Returns float32 on ``x``'s device, unclamped; a result with NaN or inf is refused.

    ``restore`` (alpha < 1): add back ``(1 - alpha) * (x - y0)``, where ``y0`` is the model's own output at
    alpha 0, its reconstruction of the photo. That is what the network loses of the photo (detail, exact
    colours), so alpha 0 returns the photo itself and the alphas between keep the model's own interpolation
    of the style, plus that share of the photo's detail (docs/USAGE.md). It costs a second content pass;
    alpha 0 needs none."""
    if restore and alpha <= 0.0:
        return x.float().clone()
    p = next(model.parameters())
    codes = [c.to(p.device, p.dtype) for c in codes]
    # read once from the whole image, before any tiling: every tile, and both passes, blend towards it
    anchor = model.alpha_anchor(x) if alpha < 1.0 else None
    at = lambda a: model.codes_at_alpha(codes, a, anchor=anchor)  # noqa: E731
    if not restore or alpha >= 1.0:
        return _finite(_run(model, x, *at(alpha), masks, stroke, tile, max_pixels_untiled, progress, smooth))
    halves = [None, None] if progress is None else [lambda d, n: progress(d, 2 * n), lambda d, n: progress(n + d, 2 * n)]
    y = _run(model, x, *at(alpha), masks, stroke, tile, max_pixels_untiled, halves[0], smooth)
    y0 = _run(model, x, *at(0.0), masks, stroke, tile, max_pixels_untiled, halves[1], _own_state(smooth))
    # on the images as they are shown, clamped (as the exported graph, and so dinstyle.lite, gives them)
    return _finite(y).clamp(0, 1) + (1.0 - alpha) * (x.to(y) - _finite(y0).clamp(0, 1))


def _own_state(smooth: Smooth | None) -> Smooth | None:
    """The alpha-0 pass keeps its own smoothed statistics (under other level names): its features differ."""
    if smooth is None:
        return None
    return lambda level, mean, std: smooth(f"alpha0/{level}", mean, std)


def _finite(y: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(y).all()):
        raise DinstyleError("the model produced NaN or inf: its weights or the style code hold extreme values "
                            "(a damaged or diverged model file?)")
    return y


def _run(model, x, codes, alpha, masks, stroke, tile, max_pixels_untiled, progress, smooth) -> torch.Tensor:
    """One pass with ``codes`` and ``alpha`` as the model runs them (already blended by ``codes_at_alpha``)."""
    p = next(model.parameters())
    h, w = x.shape[-2:]
    if tile is not None or h * w > max_pixels_untiled:
        tile = tile or tile_for_budget(model, codes[0], max_pixels_untiled)
    while True:  # tile None: the whole image in one piece
        try:
            if tile is None:
                return _run_whole(model, x, codes, alpha, masks, stroke, smooth)
            return stylize_tiled(model, x, codes, alpha=alpha, masks=masks, stroke=stroke, tile=tile,
                                 progress=progress, smooth=smooth)
        except Exception as e:
            if not is_oom(e):
                raise
            _free(p.device)
            tile = _smaller_tile(model, codes[0], tile, w, h)


def _run_whole(model, x, codes, alpha, masks, stroke, smooth) -> torch.Tensor:
    p = next(model.parameters())
    on_dev = lambda t: t.to(p.device, p.dtype)  # noqa: E731
    stats_fn = None
    if smooth is not None:
        stats_fn = lambda level, f: smooth(level, *instance_stats(f, model.dins[level].eps))  # noqa: E731
    y = model.stylize(on_dev(x), codes, alpha=alpha, masks=None if masks is None else [on_dev(m) for m in masks],
                      stroke=on_dev(stroke) if torch.is_tensor(stroke) else stroke, stats_fn=stats_fn)
    return y.to(x.device, torch.float32)


def _smaller_tile(model, code, tile: int | None, w: int, h: int) -> int:
    """The tile size to retry with after running out of memory in ``tile``-px tiles (None: in one piece).
    Warnings point at the caller of ``run_model`` (stacklevel 4)."""
    if tile is None:  # tiles of half the image's pixels (halo included)
        tile = tile_for_budget(model, code, h * w // 2)
        warnings.warn(f"out of memory for {w}x{h} in one piece: retrying in {tile}-px tiles", stacklevel=4)
        return tile
    if tile <= MIN_TILE:
        raise DinstyleError(f"out of memory even in {tile}-px tiles ({w}x{h}); try a smaller --max-size") from None
    warnings.warn(f"out of memory: retrying in {tile // 2}-px tiles", stacklevel=4)
    return tile // 2
