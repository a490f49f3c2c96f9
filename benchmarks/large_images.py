"""How large an image `dinstyle stylize` handles, how long it takes and how much memory it needs.

Each measurement runs in a fresh process (peak RSS is per process):
    .venv/bin/python benchmarks/large_images.py 512 1008x756 4032x3024 8192 [--model NAME] [--tile N|--untiled]
Sizes are WxH or N (N x N). Prints one JSON line per size: wall and CPU seconds (``Stylizer.stylize`` only: the
model loaded, the style encoded and the engine warmed up on a small image first, so start-up is excluded),
seconds per megapixel, peak RSS in GiB, the tile size, and the 1-minute load average (on a shared machine
wall time depends on it). Default model: the bundled default, at its defaults (stroke size 1, so photos larger
than its reference size run scaled, plus the full-size pass for the fine band: ``runtime/scale.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h or w)


def measure(size: str, model: str, tile: int | None, untiled: bool) -> dict:
    import torch

    from dinstyle import Stylizer
    from dinstyle.runtime.memory import tile_pixel_budget, untiled_pixel_budget
    from dinstyle.runtime.tiling import tile_for_budget

    warnings.simplefilter("ignore")
    st = Stylizer.from_pretrained(model, device="cpu")
    code = st.encode_style(torch.rand(1, 3, 512, 512))
    w, h = parse_size(size)
    g = torch.Generator().manual_seed(0)  # smooth random content: some structure at every scale
    x = torch.nn.functional.interpolate(torch.rand(1, 3, h // 16, w // 16, generator=g), size=(h, w),
                                        mode="bilinear") + 0.1 * torch.rand(1, 3, h, w, generator=g)
    st.stylize(x[..., :256, :256].clamp(0, 1), code)  # warm-up: the memory footprint's one-off probe, first calls
    # the library's default rule (runtime.memory, as the runner applies it): tiles only when the memory requires
    limit = h * w if untiled else untiled_pixel_budget(st.model, code=code)
    tiled = tile is not None or h * w > limit
    tile = tile or (tile_for_budget(st.model, code, tile_pixel_budget(st.model, h * w, code=code)) if tiled
                    else None)
    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731  user + system
    t0, c0 = time.perf_counter(), cpu()
    y = st.stylize(x.clamp(0, 1), code, tile=tile, max_pixels_untiled=h * w if untiled else None)
    seconds, cpu_seconds = time.perf_counter() - t0, cpu() - c0
    assert y.shape == x.shape
    return {"size": f"{w}x{h}", "megapixels": round(h * w / 1e6, 2), "model": model,
            "mode": f"tiles of {tile}" if tiled else "untiled", "untiled_limit_px": limit,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 1),
            "seconds_per_mp": round(seconds / (h * w / 1e6), 3),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "threads": torch.get_num_threads(), "load_avg_1min": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="+", help="WxH or N (a square)")
    ap.add_argument("--model", default=None, help="model name or file (default: the bundled default)")
    ap.add_argument("--tile", type=int)
    ap.add_argument("--untiled", action="store_true", help="never tile (may run out of memory)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.model is None:
        from dinstyle.defaults import DEFAULT_MODEL
        a.model = DEFAULT_MODEL
    if a.child:
        print(json.dumps(measure(a.sizes[0], a.model, a.tile, a.untiled)), flush=True)
        return
    for s in a.sizes:
        cmd = [sys.executable, __file__, s, "--model", a.model, "--child"] + (["--untiled"] if a.untiled else [])
        cmd += ["--tile", str(a.tile)] if a.tile else []
        r = subprocess.run(cmd, capture_output=True, text=True)
        print(r.stdout.strip() or json.dumps({"size": s, "error": r.stderr.strip().splitlines()[-1:]}), flush=True)


if __name__ == "__main__":
    main()
