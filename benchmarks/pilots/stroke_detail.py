#!/usr/bin/env python3
"""Pilot (issue 22, 2026-12-05): which of the photo's detail to add back when the stroke size is > 1.

    python benchmarks/pilots/stroke_detail.py [STYLE]

full = everything the larger resize removed (before), base = only what stroke size 1's resize removes (chosen),
half = base + the rest at 1/S, none = no detail. Prints the wavelength ratio and high-pass RMS ratio (S / S=1,
``dinstyle.eval.wavelength``) and writes each S=3 output to /tmp/sd/ to look at.
"""
import sys, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from stroke_scale import gradient
from dinstyle import Stylizer
from dinstyle.eval.wavelength import stroke_scale
from dinstyle.io.images import load_image, pil_to_tensor, tensor_to_pil
from dinstyle.runtime import scale as sc
from dinstyle.defaults import scale_for, scaled_size
torch.set_num_threads(1)
st = Stylizer.from_pretrained("din-magenta", device="cpu")
code = st.encode_style(sys.argv[1] if len(sys.argv) > 1 else "builtin:irises")
def net(x):
    return st.stylize(x, code, stroke_size=1.0) if max(x.shape[-2:]) <= 512 else None
def variant(x, S, mode):
    h, w = x.shape[-2:]
    scale = scale_for(h, w, S); base = scale_for(h, w, 1.0)
    small = sc.resize(x, scaled_size(h, w, scale)).clamp(0, 1)
    y = sc.resize(net(small).float(), (h, w))
    if mode == "none" or scale == 1: return y
    full = sc.luminance(x) - sc.luminance(sc.resize(small, (h, w)))
    if mode == "full": return y + full
    if base <= 1.0: bd = torch.zeros_like(full)
    else: bd = sc.luminance(x) - sc.luminance(sc.resize(sc.resize(x, scaled_size(h, w, base)).clamp(0, 1), (h, w)))
    if mode == "base": return y + bd
    if mode == "half": return y + bd + (full - bd) / S
__import__("os").makedirs("/tmp/sd", exist_ok=True)
for name, x in [("gradient", gradient()), ("mountain", pil_to_tensor(load_image("examples/mountain.jpg"))),
                ("badlands", pil_to_tensor(load_image("../shared/data/content/endless-sky__badlands5.jpg"))),
                ("pier", pil_to_tensor(load_image("examples/pier.jpg")))]:
    for mode in ("full", "base", "half", "none"):
        base = stroke_scale(variant(x, 1.0, mode))
        row = []
        for S in (2.0, 3.0):
            y = variant(x, S, mode).clamp(0, 1)
            m = stroke_scale(y)
            row.append(f"S{S:g} {m.wavelength/base.wavelength:.2f} rms {m.hp_rms/base.hp_rms:.2f}")
            if S == 3.0: tensor_to_pil(y).save(f"/tmp/sd/{name}-{mode}-S3.jpg")
        print(name, mode, f"S1 {base.wavelength:.1f}", "; ".join(row), flush=True)
