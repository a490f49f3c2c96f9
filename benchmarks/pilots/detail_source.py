#!/usr/bin/env python3
"""Pilot (issue 22, 2026-12-05): at full size (stroke size 1), which detail comes back over the 512-px painting:
the photo's (today), the network's own full-size pass's fine band (net, netluma), or none. 24 held-out pairs.

    python benchmarks/pilots/detail_source.py photo|net|netluma|none   (from the repository root)
"""
import sys, torch
import dinstyle.runtime.runner as R
from dinstyle.runtime import scale as sc
from dinstyle.defaults import scaled_size
from dinstyle.eval.run import evaluate
orig = sc.run_scaled
mode = sys.argv[1]
def variant(run, x, scale, masks=None, detail_scale=None):
    if scale <= 1.0 or mode == "photo":
        return orig(run, x, scale, masks)
    h, w = x.shape[-2:]
    small = sc.resize(x, scaled_size(h, w, scale)).clamp(0, 1)
    y = sc.resize(run(small, None).float(), (h, w))
    if mode == "none":
        return y
    full = run(x, masks).float()  # the network's own full-size painting: its fine band
    fine = full - sc.resize(sc.resize(full, scaled_size(h, w, scale)), (h, w))
    return y + (sc.luminance(fine) if mode == "netluma" else fine)
R.run_scaled = variant
res, _, _ = evaluate(["din-magenta"], "../shared/data/content", "../shared/data/style", pairs=24, held_out=True,
                     content_size=0, judge_view="style", log=lambda m: None)
r = res[0]
print(mode, {k: round(r[k], 3) for k in ("ssim", "judge_top1", "texture_top1", "texture_mean_rank", "vggstats_top1", "vggtexture_top1", "vggtexture_mean_rank")}, flush=True)
