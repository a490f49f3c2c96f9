"""int8 content graphs vs fp32: quality (PSNR, max difference) and CPU latency, on ONNX Runtime.

    python benchmarks/quantization.py [--model NAME|FILE] [--images A.jpg B.jpg ...] [--styles S.jpg ...]
                                      [--size 512] [--threads 2] [--repeats 5] [--json]

Exports the model, writes a static (calibrated QDQ) and a dynamic int8 content graph, then stylizes
the test images with every style using each graph. Quality is measured against the fp32 graph's
output: PSNR (dB, on [0, 1]) and the largest absolute difference. Calibration uses other images than
the test images (synthetic ones unless --calibration is given). Latency: median of --repeats runs
after one warm-up, graphs interleaved run by run.
An untrained model's output is close to noise and amplifies any perturbation: for figures that mean
something, pass a trained model file with --model.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, markdown_table  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="din-mobilenet-vgg", help="architecture name or model file")
    p.add_argument("--images", nargs="*", default=[], help="test content images (default: 4 synthetic)")
    p.add_argument("--styles", nargs="*", default=[], help="style images (default: 2 synthetic)")
    p.add_argument("--calibration", nargs="*", default=[], help="calibration images (default: 8 synthetic)")
    p.add_argument("--size", type=int, default=512, help="longer side of the test images (default 512)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per graph (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    args = p.parse_args()

    from dinstyle.export import export_onnx, quantize_content
    from dinstyle.export.quantize import synthetic_images
    from dinstyle.lite import LiteModel, load_rgb
    from dinstyle.lite.images import resize_long_side
    from dinstyle.models import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(args.model)
    contents = ([resize_long_side(load_rgb(f), args.size) for f in args.images]
                or synthetic_images(4, args.size, seed=10))
    styles = [load_rgb(f) for f in args.styles] or synthetic_images(2, 256, seed=11)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dinstyle-quant-") as tmp:
        d = Path(tmp) / "onnx"
        export_onnx(model, d)
        files = {"fp32": "content.onnx"}
        for mode in ("static", "dynamic"):
            target = Path(tmp) / mode
            target.mkdir()
            for f in d.iterdir():
                (target / f.name).write_bytes(f.read_bytes())
            quantize_content(target, mode=mode, calibration=args.calibration)
            files[mode] = str(target / "content.int8.onnx")
        graphs = {k: LiteModel(d, threads=args.threads, content_file=v) for k, v in files.items()}
        codes = [graphs["fp32"].encode_style(s) for s in styles]
        outputs = {k: [g.stylize(c, code) for c in contents for code in codes] for k, g in graphs.items()}
        x = np.ascontiguousarray(contents[0].transpose(2, 0, 1)[None])
        times = {k: [] for k in graphs}
        for g in graphs.values():
            g.stylize_array(x, codes[0])  # warm-up
        for _ in range(args.repeats):
            for k, g in graphs.items():
                t0 = time.perf_counter()
                g.stylize_array(x, codes[0])
                times[k].append(time.perf_counter() - t0)
        for k in graphs:
            pairs = list(zip(outputs[k], outputs["fp32"]))
            rows.append({"model": model.arch, "runtime": "onnxruntime", "graph": k,
                         "size": f"{x.shape[3]}x{x.shape[2]}", "threads": args.threads,
                         "median_ms": round(statistics.median(times[k]) * 1000, 1),
                         "psnr_db": round(min(psnr(a, b) for a, b in pairs), 2) if k != "fp32" else "",
                         "max_abs_diff": round(max(float(np.abs(a - b).max()) for a, b in pairs), 4),
                         "file_kb": round(Path(d / files[k] if k == "fp32" else files[k]).stat().st_size / 1024)})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(header("int8 content graph vs fp32 (ONNX Runtime, CPU)", "onnxruntime", "onnx"))
    print(f"model: {args.model} ({'trained' if getattr(model, 'info', {}).get('trained') else 'UNTRAINED'}); "
          f"{len(contents)} test images x {len(styles)} styles; PSNR = worst pair, vs the fp32 graph\n")
    print(markdown_table([("graph", "graph"), (">size", "size"), (">threads", "threads"), (">median ms", "median_ms"),
                          (">PSNR dB", "psnr_db"), (">max abs diff", "max_abs_diff"), (">file KB", "file_kb")], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
