"""Throughput of `dinstyle dataset`: images/s at 224x224 (the Stylized-ImageNet crop) and at the photos' own
sizes, on the local engine with 1 and 2 workers and on Ray with 2 actors; Ray's overhead against local; and
a projection for ImageNet-1k train (1,281,167 photos) on this machine and on N cores.

    python benchmarks/dataset_throughput.py --content ../shared/data/content --styles ../shared/data/style

Each run is a fresh job into an empty folder (same seed, so the same draws). "steady" is images/s from the
first finished batch to the last (what a million-photo job sees); "job" divides by the whole call (listing,
model, style bank, workers' start-up); "worker CPU" is the CPU time the workers spent per image, which the
machine's other load does not change (the projection to N dedicated cores uses it). Prints a Markdown
section for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, markdown_table  # noqa: E402

IMAGENET_TRAIN = 1_281_167
IMAGENET_MEAN_PIXELS = 469 * 387  # the commonly quoted mean size of ImageNet-1k train photos
PAINTER_BY_NUMBERS = 79_433  # the paintings Stylized-ImageNet draws from (Kaggle "Painter by Numbers" train)
CONFIGS = [("local", 1, 2), ("local", 1, 1), ("local", 2, 1), ("ray", 2, 1)]  # engine, workers, threads


def prepare(content: Path, styles: Path, tmp: Path, n_styles: int, n_original: int) -> dict[str, Path]:
    """The photo sets (224x224 centre crops of every photo; the first photos at their own size) and a
    style subset (the style count changes only the bank's encoding time, measured on its own)."""
    sets = {"224x224": tmp / "crops", "original": tmp / "original"}
    photos = sorted(p for p in content.iterdir() if p.is_file())
    for d in (*sets.values(), tmp / "styles"):
        d.mkdir()
    for p in photos:
        with Image.open(p) as im:
            ImageOps.fit(im.convert("RGB"), (224, 224), Image.BICUBIC).save(sets["224x224"] / p.name, quality=95)
    for p in photos[:n_original]:
        os.symlink(p.resolve(), sets["original"] / p.name)
    for p in sorted(styles.iterdir())[:n_styles]:
        os.symlink(p.resolve(), tmp / "styles" / p.name)
    return sets


def bank_rate(styles: Path, model: str) -> float:
    """Seconds per style to encode the style bank (decoding included), on this process's threads."""
    import torch

    from dinstyle.api import Stylizer
    from dinstyle.dataset import bank
    from dinstyle.dataset.tree import list_images

    torch.set_num_threads(1)  # as the job encodes its bank (dinstyle.dataset.run)
    st = Stylizer.from_pretrained(model, device="cpu", half=False)
    entries = list_images(str(styles))
    t = time.perf_counter()
    bank.build(st, entries, "benchmark")
    return (time.perf_counter() - t) / len(entries)


def run_all(sets: dict[str, Path], styles: Path, tmp: Path, args) -> list[dict]:
    from dinstyle.dataset import DatasetOptions, stylize_dataset

    rows = []
    for name, photos in sets.items():
        pixels = sum(Image.open(p).width * Image.open(p).height for p in photos.iterdir()) / len(list(photos.iterdir()))
        for engine, workers, threads in CONFIGS:
            if engine == "ray" and args.skip_ray:
                continue
            out = tmp / f"out-{name}-{engine}-{workers}-{threads}"
            o = DatasetOptions(model=args.model, engine=engine, workers=workers, threads=threads, progress=False,
                               batch_size=args.batch_size)
            s = stylize_dataset(str(photos), str(styles), out, o)
            rows.append({"set": name, "engine": engine, "workers": workers, "threads": threads, "photos": s.written,
                         "mp": round(pixels / 1e6, 3), "steady": round(s.steady_rate or s.rate, 1), "job": round(s.rate, 1),
                         "seconds": round(s.seconds, 1), "pixels": pixels,
                         "cpu_ms": round(1e3 * s.cpu_seconds / max(1, s.written), 1)})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def projection(rows: list[dict], sec_per_style: float) -> str:
    """Hours for ImageNet-1k train: on this machine at the best steady local rate and at Ray's, as measured
    (under its load), and on N dedicated cores from the workers' CPU time per image (Ray's: a cluster runs
    Ray), assuming linear scaling (it cannot do better). Original size scales by the pixels."""
    cols = [("photos", "what"), (">local images/s", "rate"), (">hours", "here"), (">Ray images/s", "ray"),
            (">hours", "ray_h"), (">CPU ms/image", "cpu"), (">h, 2 idle cores", "c2"), (">16 cores", "c16"),
            (">64 cores", "c64"), (">256 cores", "c256")]
    lines = [markdown_table(cols, _projection_rows(rows))]
    lines += ["", f"Style bank: {sec_per_style * 1e3:.0f} ms per style (decode + encode, one thread); the "
              f"{PAINTER_BY_NUMBERS:,} paintings of Stylized-ImageNet would take "
              f"{sec_per_style * PAINTER_BY_NUMBERS / 3600:.1f} h once, on one core, at these styles' size "
              "(its paintings are larger: decoding them takes longer)."]
    return "\n".join(lines)


def _projection_rows(rows: list[dict]) -> list[dict]:
    out = []
    for name, label, pixels in (("224x224", "224x224 crops", 224 * 224),
                                ("original", f"original size (mean {IMAGENET_MEAN_PIXELS / 1e6:.2f} MP assumed)",
                                 IMAGENET_MEAN_PIXELS)):
        local = [r for r in rows if r["set"] == name and r["engine"] == "local"]
        if not local:
            continue
        best = max(local, key=lambda r: r["steady"])
        scale = best["pixels"] / pixels  # the content path's time grows with the pixels
        rate = best["steady"] * scale
        ray = next((r for r in rows if r["set"] == name and r["engine"] == "ray"), best)
        cpu = ray["cpu_ms"] / 1e3 / scale  # CPU seconds per ImageNet-sized photo
        hours = lambda n: f"{IMAGENET_TRAIN * cpu / n / 3600:.2f}"  # noqa: E731
        out.append({"what": label, "rate": f"{rate:.1f}", "here": f"{IMAGENET_TRAIN / rate / 3600:.1f}",
                    "ray": f"{ray['steady'] * scale:.1f}", "ray_h": f"{IMAGENET_TRAIN / (ray['steady'] * scale) / 3600:.1f}",
                    "cpu": f"{cpu * 1e3:.0f}", "c2": hours(2), "c16": hours(16), "c64": hours(64), "c256": hours(256)})
    return out


def overhead(rows: list[dict]) -> str:
    lines = []
    for name in ("224x224", "original"):
        ray = next((r for r in rows if r["set"] == name and r["engine"] == "ray"), None)
        loc = next((r for r in rows if r["set"] == name and r["engine"] == "local" and r["workers"] == 2), None)
        if ray and loc and loc["steady"] and loc["cpu_ms"]:
            lines.append(f"- {name}: Ray (2 actors) vs local (2 workers): CPU {ray['cpu_ms']} vs {loc['cpu_ms']} ms per "
                         f"image ({100 * (ray['cpu_ms'] / loc['cpu_ms'] - 1):+.0f}%); steady {ray['steady']} vs "
                         f"{loc['steady']} images/s; whole job {ray['seconds']} s vs {loc['seconds']} s "
                         f"({ray['seconds'] - loc['seconds']:+.1f} s)")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--content", type=Path, default=Path("../shared/data/content"))
    p.add_argument("--styles", type=Path, default=Path("../shared/data/style"))
    p.add_argument("--model", default="din-magenta")
    p.add_argument("--styles-limit", type=int, default=32, help="styles in the bank (default 32)")
    p.add_argument("--original-limit", type=int, default=128, help="photos of the original-size set (default 128)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    doc = [header("Dataset throughput (`dinstyle dataset`)", "torch", "ray")]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sets = prepare(args.content, args.styles, tmp, args.styles_limit, args.original_limit)
        sec_per_style = bank_rate(tmp / "styles", args.model)
        rows = run_all(sets, tmp / "styles", tmp, args)
    cols = [("set", "set"), (">mean MP", "mp"), ("engine", "engine"), (">workers", "workers"),
            (">threads each", "threads"), (">photos", "photos"), (">steady images/s", "steady"),
            (">job images/s", "job"), (">job s", "seconds"), (">worker CPU ms/image", "cpu_ms")]
    doc += [markdown_table(cols, rows), "", overhead(rows), "", "#### Projection: ImageNet-1k train (1,281,167 photos)",
            "", projection(rows, sec_per_style)]
    print("\n".join(doc))


if __name__ == "__main__":
    main()
