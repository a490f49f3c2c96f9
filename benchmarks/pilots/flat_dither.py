#!/usr/bin/env python3
"""Pilot (issue 22 item 4, 2026-12-05): do flat regions lose their grid/streaks when the photo is prepared
before the network: a fixed dither (Gaussian noise of ``sigma``) so flat areas give the network something to
paint from, and/or a blur of the flat areas only (JPEG blocks and banding out)? din-magenta, 6 synthetic
graphics + 7 flat-sky photos x 6 built-in styles at 512 px, scored by benchmarks/stroke_placement.py's
measures (placement up = more even texture, periodic down = fewer grids and streaks).

    python benchmarks/pilots/flat_dither.py [--grid /tmp/pilot/dither.png]   (from the repository root)
"""
import argparse, sys, warnings
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stroke_placement as sp  # noqa: E402
from dinstyle.eval.stroke import content_masks, gaussian_blur  # noqa: E402
from dinstyle.eval.stroke_shapes import synthetic_set  # noqa: E402
from dinstyle.models import load_model  # noqa: E402

PHOTOS = ["tuxtype__kcas6", "endless-sky__myrabella1", "gcompris-explore-monuments__goldenTemple",
          "gcompris-explore-monuments__arlesAmphitheater", "endless-sky__fog1", "endless-sky__sky6"]
STYLES = ["irises", "grande-jatte", "wheat-fields", "haystacks", "moonrise", "harvesters"]


def prepare(x: torch.Tensor, sigma: float, blur: float) -> torch.Tensor:
    if blur > 0:  # flat areas only: where the content mask says flat, a blurred copy
        flat = content_masks(x)[0].float()
        x = x * (1 - flat) + gaussian_blur(x, blur) * flat
    if sigma > 0:
        g = torch.Generator().manual_seed(0)
        x = x + sigma * torch.randn(x.shape, generator=g)
    return x.clamp(0, 1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variants", default="0:0,0.02:0,0.05:0,0:2,0.03:2")
    p.add_argument("--grid")
    a = p.parse_args()
    data = Path("../shared/data/content")
    skipped = []
    contents = synthetic_set(512, 1, 0) + sp.load_images([data / f"{n}.jpg" for n in PHOTOS] + [Path("examples/mountain.jpg")], 512, skipped)
    styles = sp.load_images([Path(f"src/dinstyle/assets/styles/{s}.jpg") for s in STYLES], 256, skipped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model("din-magenta").eval()
    base = model.stylize
    outputs, keep = {}, [(c, styles[i % len(styles)][0]) for i, (c, _) in enumerate(sp.spread(contents, 6))]
    for v in a.variants.split(","):
        sigma, blur = map(float, v.split(":"))
        model.stylize = lambda x, code, **kw: base(prepare(x, sigma, blur), code, **kw)
        pairs, outputs[v] = sp.evaluate(model, contents, styles, 256, torch.device("cpu"), set(keep))
        s = sp.summarise(pairs)
        print(f"sigma {sigma} blur {blur}: placement {s['mean']['placement']:.3f} periodic {s['mean']['periodic']:.3f} "
              f"coverage {s['mean']['coverage']:.3f} flat_rms {s['mean']['flat_rms']:.4f}", flush=True)
    if a.grid:
        sp.save_grid(a.grid, contents, styles, outputs, keep)


if __name__ == "__main__":
    main()
