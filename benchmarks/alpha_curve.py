#!/usr/bin/env python3
"""The strength slider measured: how far each alpha moves from the photo, and how far towards the style.

    python benchmarks/alpha_curve.py --content ../shared/data/content --style ../shared/data/style \\
        [--model din-magenta --model old=FILE ...] [--pairs 24] [--alphas 0,0.1,0.25,0.5,0.75,0.9,1] [--json]

For each model, with dinstyle's restore (the default) and without it (``--no-restore``), on held-out
pairs (`dinstyle eval`'s split, pairs and 256-px crops):

* ``SSIM`` to the photo at each alpha (1 at alpha 0 means the photo comes back);
* ``progress`` towards the style: the distance between the output's and the style's VGG-19 channel
  statistics (relu1_1..relu4_1, `dinstyle eval`'s VGG-stats judge), averaged over the pairs, as a share of
  the way from the photo's own distance (0) to the model's output at alpha 1 (1). A slider that adds the
  style evenly climbs steadily; one that shows nothing until alpha 0.8 climbs late; a broken one leaves
  [0, 1].
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, markdown_table, parse_list  # noqa: E402

ALPHAS = "0,0.1,0.25,0.5,0.75,0.9,1"


def measure(st, data, judge, alphas: list[float], restore: bool) -> tuple[np.ndarray, np.ndarray]:
    """SSIM to the photo (pairs, alphas) and progress towards the style (alphas; NaN where the model's
    alpha 1 is no nearer the style than the photo)."""
    from dinstyle.eval.metrics import ssim

    style_vecs = judge.vectors(data.style_images)
    ssims, dists, photo_dist = [], [], []
    for p in data.pairs:
        code = st.encode_style(data.style_images[p.style_index])
        outs = [st.stylize(p.content_image, code, alpha=a, restore=restore) for a in alphas]
        ssims.append([float(ssim(o, p.content_image)[0]) for o in outs])
        vecs = judge.vectors(outs + [p.content_image])
        d = np.linalg.norm(vecs - style_vecs[p.style_index], axis=1)
        dists.append(d[:-1])
        photo_dist.append(d[-1])
    # means first, then the share: per pair, a model that barely moves a pair at alpha 1 would divide by ~0
    dists, photo_dist = np.array(dists).mean(0), float(np.mean(photo_dist))
    full = dists[alphas.index(1.0)] if 1.0 in alphas else dists[-1]
    progress = (photo_dist - dists) / (photo_dist - full) if photo_dist > full else np.full_like(dists, np.nan)
    return np.array(ssims), progress


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="NAME, FILE or LABEL=FILE (repeatable; default: din-magenta)")
    p.add_argument("--content", required=True, help="photo folder (its held-out split is used)")
    p.add_argument("--style", required=True, help="style folder (its held-out split is used)")
    p.add_argument("--pairs", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alphas", default=ALPHAS)
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown tables")
    args = p.parse_args(argv)
    alphas = parse_list(args.alphas, "--alphas", float)
    if any(not 0 <= a <= 1 for a in alphas):
        raise SystemExit("error: --alphas must lie in [0, 1]")

    from dinstyle import Stylizer
    from dinstyle.backbones import create_backbone
    from dinstyle.errors import DinstyleError
    from dinstyle.eval.judges import VGGStatsJudge
    from dinstyle.eval.run import build_eval_set

    torch.set_grad_enabled(False)
    try:
        data = build_eval_set(args.content, args.style, args.pairs, args.seed, 256, held_out=True,
                              log=lambda m: print(m, file=sys.stderr))
        judge = VGGStatsJudge(create_backbone("vgg19"), data.style_images)
        rows = []
        for spec in args.model or ["din-magenta"]:
            label, _, src = spec.rpartition("=")
            st = Stylizer.from_pretrained(src, device="cpu")
            for restore in (True, False):
                s, prog = measure(st, data, judge, alphas, restore)
                name = f"{label or src}, {'restore' if restore else '--no-restore'}"
                rows.append({"model": name, "ssim": s.mean(0).tolist(), "progress": prog.tolist()})
                print(f"{name}: done", file=sys.stderr)
    except DinstyleError as e:
        raise SystemExit(f"error: {e}") from None
    if args.json:
        print(json.dumps({"alphas": alphas, "pairs": len(data.pairs), "rows": rows}, indent=1))
        return 0
    print(header(f"alpha curve, {len(data.pairs)} held-out pairs at 256 px", "torch"))
    cols = [("model", "model")] + [(f">alpha {a:g}", f"a{i}") for i, a in enumerate(alphas)]
    for key, title in (("ssim", "SSIM to the photo"), ("progress", "progress towards the style (VGG statistics)")):
        print(f"\n{title}\n")
        print(markdown_table(cols, [{"model": r["model"], **{f"a{i}": f"{v:.2f}" for i, v in enumerate(r[key])}}
                                    for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
