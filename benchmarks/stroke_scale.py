#!/usr/bin/env python3
"""Stroke size measured: does ``--stroke-size S`` scale the strokes, without blurring them, and at what cost?

    python benchmarks/stroke_scale.py [--model din-magenta] [--style builtin:irises] [--sizes 0.5,1,2,3]
        [--photo examples/mountain.jpg --photo examples/pier.jpg ...] [--long-side 0] [--json]

For each photo (and a smooth synthetic gradient, 1024x768) and each stroke size S, the output of
``Stylizer.stylize(..., stroke_size=S)`` is measured with ``dinstyle.eval.wavelength.stroke_scale``:
``wavelength`` (px), the power-weighted mean wavelength of the high-pass luminance (luminance minus a
Gaussian blur of sigma 24 px, 16-px border cropped, Hann window, 1/64 to 1/2 cycles per px); ``hp_rms``, its
RMS; ``seconds``, the call's wall time (one run, after one untimed warm-up). ``ratio`` and ``rms ratio`` compare
with S = 1. ``--long-side N`` resizes each photo first (0 = as it is).

``exact xS`` is the measure's ceiling: the ratio scored by S = 1's output itself magnified exactly S times (its
centre 1/S crop, bicubic). The band stops at 64 px, so a texture whose wavelength is already ~25 px at S = 1
cannot score S x, however exactly it is enlarged.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, markdown_table, parse_list  # noqa: E402


def gradient(h: int = 768, w: int = 1024) -> torch.Tensor:
    """A smooth synthetic 'photo': colour ramps and one soft disc, no texture of its own."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.3 + 0.5 * yy, 0.5 + 0.3 * xx, 0.8 - 0.4 * yy])
    disc = torch.exp(-(((yy - 0.4) ** 2 + (xx - 0.6) ** 2) / 0.02))
    return (img * (1 - 0.5 * disc) + 0.5 * disc * torch.tensor([0.9, 0.7, 0.2]).view(3, 1, 1))[None].clamp(0, 1)


def magnified(y: torch.Tensor, s: float) -> torch.Tensor:
    """The centre 1/s of ``y`` enlarged s times (bicubic) to ``y``'s size: a perfect s-fold stroke scale."""
    h, w = y.shape[-2:]
    ch, cw = round(h / s), round(w / s)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = y[..., top:top + ch, left:left + cw]
    return F.interpolate(crop, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="din-magenta")
    p.add_argument("--style", default="builtin:irises")
    p.add_argument("--sizes", default="0.5,1,2,3")
    p.add_argument("--photo", action="append", default=[])
    p.add_argument("--long-side", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from dinstyle import Stylizer
    from dinstyle.eval.wavelength import stroke_scale
    from dinstyle.io.images import load_image, pil_to_tensor
    from dinstyle.runtime.controls import resize_long_side

    sizes = parse_list(args.sizes, "--sizes", float)
    st = Stylizer.from_pretrained(args.model, device="cpu")
    images = {"gradient": gradient()}
    for f in args.photo or ["examples/mountain.jpg", "examples/pier.jpg"]:
        x = pil_to_tensor(load_image(f))
        images[Path(f).name] = resize_long_side(x, args.long_side) if args.long_side else x
    code = st.encode_style(args.style)
    st.stylize(images["gradient"][..., :64, :64], code)  # warm-up
    rows = []
    for name, x in images.items():
        base, base_out = None, None
        for s in sizes:
            t0 = time.perf_counter()
            y = st.stylize(x, code, stroke_size=s)
            seconds = time.perf_counter() - t0
            m = stroke_scale(y)
            if s == 1.0:
                base, base_out = m, y
            rows.append({"image": name, "size": f"{x.shape[-1]}x{x.shape[-2]}", "S": s,
                         "wavelength": round(m.wavelength, 2), "hp_rms": round(m.hp_rms, 4),
                         "seconds": round(seconds, 2), "_m": m})
        for r in rows:
            if r["image"] == name and base is not None:
                r["ratio"] = round(r["_m"].wavelength / base.wavelength, 2)
                r["rms_ratio"] = round(r["_m"].hp_rms / base.hp_rms, 2)
                if r["S"] > 1.0:
                    r["exact"] = round(stroke_scale(magnified(base_out, r["S"])).wavelength / base.wavelength, 2)
    for r in rows:
        r.pop("_m")
    if args.json:
        print(json.dumps(rows))
        return
    print(header(f"Stroke size: {args.model}, style {args.style}", "torch"))
    print(markdown_table([("image", "image"), ("size", "size"), (">S", "S"), (">wavelength px", "wavelength"),
                          (">vs S=1", "ratio"), (">exact xS", "exact"), (">hp RMS", "hp_rms"), (">vs S=1", "rms_ratio"),
                          (">seconds", "seconds")], rows))


if __name__ == "__main__":
    main()
