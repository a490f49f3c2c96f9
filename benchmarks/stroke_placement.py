#!/usr/bin/env python3
"""Stroke placement on non-natural content: how much texture each model puts into flat regions.

    python benchmarks/stroke_placement.py --model din-mobilenet-vgg --model deform=runs/deform/model.safetensors \\
        --model adain --style /work/shared/data/style --max-styles 8 [--json] [--grid docs/img/deformable.png]

Models are registered names (bundled weights, else UNTRAINED: the figures then mean nothing) or model
files. Contents are synthesised (flat-colour shapes, text, cartoons; see dinstyle.eval.stroke_shapes), plus
any ``--content`` images. The metric is defined in dinstyle.eval.stroke: ``placement`` = RMS
high-pass luminance texture of the output inside the content's flat regions / inside its edge regions
(higher = strokes placed more uniformly); ``coverage`` = share of flat pixels that get strokes at all;
``periodic`` (dinstyle.eval.periodic) = share of the flat regions' texture power in spectral peaks: grids and
streaks instead of brushwork (lower = cleaner; NaN where no 64-px window is flat).
Unreadable style or content files are skipped and reported; everything else is stylized.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from dinstyle.defaults import DITHER
from dinstyle.errors import DinstyleError
from dinstyle.io.images import image_extensions, load_image, pil_to_tensor, save_image, tensor_to_pil
from dinstyle.eval.periodic import periodic_artefacts
from dinstyle.eval.stroke import content_masks, stroke_placement
from dinstyle.eval.stroke_shapes import KINDS, default_font, synthetic_set
from dinstyle.models import load_model, model_id
from dinstyle.runtime.controls import resize_long_side
from dinstyle.runtime.devices import pick_device
from dinstyle.runtime.request import RunRequest
from dinstyle.runtime.runner import run_model

FIGURES = ("placement", "coverage", "flat_rms", "structure_rms", "periodic")


def image_files(sources: list[str]) -> list[Path]:
    """Files given directly, and the images inside given folders (recursively, sorted)."""
    exts, out = image_extensions(), []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts)
        else:
            out.append(p)
    return out


def spread(items: list, n: int) -> list:
    """``n`` items evenly spaced over the list (all when n <= 0 or the list is short)."""
    if n <= 0 or len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else items[:1]


def load_images(paths: list[Path], size: int, skipped: list[str]) -> list[tuple[str, torch.Tensor]]:
    out = []
    for p in paths:
        try:
            out.append((p.name, resize_long_side(pil_to_tensor(load_image(p)), size)))
        except DinstyleError as e:
            skipped.append(str(e))
    return out


def nanmean(values: list[float]) -> float:
    good = [v for v in values if not math.isnan(v)]
    return sum(good) / len(good) if good else float("nan")


def nanstd(values: list[float]) -> float:
    good = [v for v in values if not math.isnan(v)]
    if len(good) < 2:
        return float("nan")
    m = sum(good) / len(good)
    return math.sqrt(sum((v - m) ** 2 for v in good) / (len(good) - 1))


@torch.inference_mode()
def evaluate(model, contents, styles, style_size: int, device, keep: set,
             dither: float = DITHER) -> tuple[list[dict], dict]:
    """Scores for every (content, style) pair, and the outputs of the pairs in ``keep`` (for the grid). Each
    content runs as dinstyle runs it (``run_model``: the fixed dither, ``--dither``, included)."""
    pairs, kept = [], {}
    for sname, style in styles:
        code = model.encode_style(resize_long_side(style.to(device), style_size))
        for cname, content in contents:
            out = run_model(model, content.to(device), RunRequest([code], dither=dither)).clamp(0, 1).float().cpu()
            masks = content_masks(content)
            score = stroke_placement(out, content, masks=masks)[0]
            periodic = periodic_artefacts(out, masks[0])[0].periodic
            pairs.append({"content": cname, "style": sname, **score.as_dict(), "periodic": periodic})
            if (cname, sname) in keep:
                kept[(cname, sname)] = out
    return pairs, kept


def summarise(pairs: list[dict]) -> dict:
    mean = {f: nanmean([p[f] for p in pairs]) for f in FIGURES}
    by_kind = {k: nanmean([p["placement"] for p in pairs if p["content"].split("-")[0] == k]) for k in KINDS}
    by_kind["other"] = nanmean([p["placement"] for p in pairs if p["content"].split("-")[0] not in KINDS])
    return {"mean": mean, "placement_sd": nanstd([p["placement"] for p in pairs]), "by_kind": by_kind,
            "pairs_scored": sum(not math.isnan(p["placement"]) for p in pairs)}


def fmt(v: float, d: int = 3) -> str:
    return "n/a" if math.isnan(v) else f"{v:.{d}f}"


def markdown(results: dict) -> str:
    rows = ["| model | trained | placement ↑ | coverage ↑ | flat RMS | edge RMS | periodic ↓ | shapes | text | cartoon "
            "| pairs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in results.items():
        m, k = r["mean"], r["by_kind"]
        steps = f" ({r['steps']} steps)" if r.get("steps") else ""
        rows.append(f"| {label} | {'yes' + steps if r['trained'] else 'NO'} | {fmt(m['placement'])} ± {fmt(r['placement_sd'])} "
                    f"| {fmt(m['coverage'])} | {fmt(m['flat_rms'], 4)} | {fmt(m['structure_rms'], 4)} | {fmt(m['periodic'])} | "
                    f"{fmt(k['shapes'])} | {fmt(k['text'])} | {fmt(k['cartoon'])} | {r['pairs_scored']} |")
    note = "\n\nplacement = RMS texture in flat regions / RMS texture at edges (mean ± sd over content-style pairs)"
    if not all(r["trained"] for r in results.values()):
        note += "\n**Untrained models present: their figures are meaningless.**"
    return "\n".join(rows) + note


def save_grid(path: str, contents, styles, outputs: dict, keep: list) -> None:
    """Rows = kept (content, style) pairs; columns = content | style (thumbnail) | one per model."""
    size = contents[0][1].shape[-1]
    cmap, smap = dict(contents), dict(styles)
    rows = []
    for cname, sname in keep:
        c = torch.nn.functional.interpolate(cmap[cname], size=(size, size), mode="bilinear", antialias=True)
        s = torch.nn.functional.interpolate(smap[sname], size=(size, size), mode="bilinear", antialias=True)
        outs = [torch.nn.functional.interpolate(o[(cname, sname)], size=(size, size), mode="bilinear")
                for o in outputs.values()]
        rows.append(torch.cat([c, s, *outs], dim=3))
    body = tensor_to_pil(torch.cat(rows, dim=2))
    header = max(16, size // 10)
    im = Image.new("RGB", (body.width, body.height + header), "white")
    im.paste(body, (0, header))
    draw, font = ImageDraw.Draw(im), default_font(header * 3 // 5)
    for i, title in enumerate(["content", "style", *outputs]):
        left, top, right, bottom = draw.textbbox((0, 0), title, font=font)
        draw.text((i * size + (size - right + left) // 2, (header - bottom + top) // 2 - top), title,
                  fill="black", font=font)
    save_image(im, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, metavar="[LABEL=]NAME|FILE",
                   help="architecture name or model file, optionally labelled for the table (repeatable)")
    p.add_argument("--style", action="append", required=True, metavar="DIR|FILE", help="repeatable")
    p.add_argument("--content", action="append", default=[], metavar="DIR|FILE",
                   help="extra non-natural content images (repeatable; synthesised ones are always used)")
    p.add_argument("--max-styles", type=int, default=8, help="styles used, evenly spread (0 = all; default 8)")
    p.add_argument("--per-kind", type=int, default=2, help="synthetic contents per kind (default 2)")
    p.add_argument("--size", type=int, default=256, help="content size in pixels (default 256)")
    p.add_argument("--style-size", type=int, default=256, help="style long side in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dither", type=float, default=DITHER,
                   help=f"sigma of the fixed input dither (default {DITHER}, as dinstyle runs; 0 = none, as before)")
    p.add_argument("--device", default="auto")
    p.add_argument("--grid", metavar="FILE.png", help="also save a side-by-side picture (content, style, models)")
    p.add_argument("--grid-rows", type=int, default=4)
    p.add_argument("--json", action="store_true", help="print JSON (with per-pair scores) instead of a table")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON to FILE")
    args = p.parse_args(argv)
    if args.size < 32 or args.style_size < 16 or args.per_kind < 1:
        p.error("--size must be >= 32, --style-size >= 16, --per-kind >= 1")
    try:
        device = pick_device(args.device)
        skipped: list[str] = []
        styles = load_images(spread(image_files(args.style), args.max_styles), args.style_size, skipped)
        if not styles:
            raise DinstyleError("no readable style image" + (f" ({skipped[0]})" if skipped else ""))
        contents = synthetic_set(args.size, args.per_kind, args.seed)
        contents += load_images(image_files(args.content), args.size, skipped)
        models, trained = {}, {}
        for spec in args.model:
            label, name = spec.split("=", 1) if "=" in spec and not Path(spec).exists() else (spec, spec)
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")  # the untrained warning becomes the 'trained' column
                m = load_model(name)
            label = label if label not in models else f"{label} ({model_id(m)})"
            models[label] = m.to(device).eval()
            info = getattr(m, "info", {}) or {}
            trained[label] = {"trained": bool(info.get("trained", False)), "steps": info.get("step")}
    except DinstyleError as e:
        print(f"stroke_placement: error: {e}", file=sys.stderr)
        return 1
    keep = [(c, styles[i % len(styles)][0]) for i, (c, _) in enumerate(spread(contents, args.grid_rows))]
    results, outputs = {}, {}
    for label, model in models.items():
        pairs, outputs[label] = evaluate(model, contents, styles, args.style_size, device, set(keep), args.dither)
        results[label] = {"model": model_id(model), **trained[label], **summarise(pairs), "pairs": pairs}
    for s in skipped:
        print(f"stroke_placement: skipped: {s}", file=sys.stderr)
    if args.grid:
        save_grid(args.grid, contents, styles, outputs, keep)
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "json_out")}
    report = json.dumps({"settings": settings, "device": str(device), "models": results, "skipped": skipped})
    if args.json_out:
        Path(args.json_out).write_text(report + "\n")
    if args.json:
        print(report)
    else:
        print(markdown(results))
        print(f"\n{len(contents)} contents x {len(styles)} styles, content {args.size}px, style {args.style_size}px, "
              f"device {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
