"""GPU throughput (frames/s) of the content path for adain and din-mobilenet-vgg.

    python benchmarks/gpu_throughput.py                      # CUDA: 1920x1080 and 3840x2160, batch 1 and 8
    python benchmarks/gpu_throughput.py --modes eager,channels_last,cudagraph,compile --dtypes bf16
    python benchmarks/gpu_throughput.py --device cpu --sizes 64x64 --iters 2   # toy run: checks the code path

Each configuration is (model, size, batch, dtype, mode), modes being cumulative optimisations:
  eager          NCHW, weights and input in ``dtype``
  channels_last  + NHWC memory format (tensor cores prefer it)
  cudagraph      + the whole content path captured once as a CUDA graph and replayed (CUDA only)
  compile        + torch.compile (inductor; first call compiles, not timed)
The style code is encoded once (batch 1) and broadcast over the batch, as for video frames.
frames/s = batch * iters / wall time after ``--warmup`` untimed iterations (synchronised).
diff_vs_fp32: max |output - fp32 eager output| at batch 1, both clamped to [0, 1] as saved (the cost of
the reduced precision; untrained weights exaggerate it).
Weights are untrained except the VGG-19 backbones: speed does not depend on them.
Out-of-memory and unsupported combinations become rows with an ``error`` and the run goes on.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, markdown_table, parse_list  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
MODES = ("eager", "channels_last", "cudagraph", "compile")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(name: str, device: torch.device):
    from dinstyle.models import create_model

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(name).eval().to(device)
    with torch.inference_mode():
        code = model.encode_style(torch.rand(1, 3, 256, 256, device=device))
    return model, code


def content_fn(model, code, dtype: torch.dtype, mode: str, example: torch.Tensor):
    """A callable x -> stylized x for ``mode`` (cumulative), and the input to feed it."""
    model = model.to(dtype)
    code = code.to(dtype=dtype)
    x = example.to(dtype)
    if mode != "eager":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def run(inp):
        return model.stylize(inp, code)

    if mode == "compile":
        return torch.compile(run, dynamic=False), x
    if mode == "cudagraph":
        if x.device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        static_in = x.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm up kernels/allocator outside the capture
                run(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = run(static_in)

        def replay(inp):
            static_in.copy_(inp)
            graph.replay()
            return static_out

        return replay, x
    return run, x


def bench_one(model, code, base: torch.Tensor, batch, dtype_name, mode, args, reference) -> dict:
    device = base.device
    h, w = base.shape[-2:]
    row = {"model": model.arch, "size": f"{w}x{h}", "batch": batch, "dtype": dtype_name, "mode": mode,
           "runtime": f"pytorch-{device.type}"}
    try:
        example = base.expand(batch, -1, -1, -1).contiguous()
        with torch.inference_mode():
            fn, x = content_fn(model, code, DTYPES[dtype_name], mode, example)
            for _ in range(args.warmup):
                out = fn(x)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.iters):
                out = fn(x)
            sync(device)
            elapsed = time.perf_counter() - t0
            if batch == 1 and reference is not None:
                row["diff_vs_fp32"] = round(float((out.float().clamp(0, 1) - reference).abs().max()), 4)
        row["fps"] = round(batch * args.iters / elapsed, 2)
        row["ms_per_batch"] = round(elapsed / args.iters * 1000, 2)
        if device.type == "cuda":
            row["peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    except Exception as e:  # OOM or an unsupported dtype/mode: record it, keep going
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}" if str(e) else type(e).__name__
    finally:
        model.float().to(memory_format=torch.contiguous_format)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        if mode == "compile":
            torch._dynamo.reset()  # the next configuration compiles afresh
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (toy check)")
    p.add_argument("--sizes", default="1920x1080,3840x2160", help="WxH list (default 1920x1080,3840x2160)")
    p.add_argument("--batches", default="1,8", help="batch sizes (default 1,8)")
    p.add_argument("--dtypes", default="fp16,bf16", help="fp16, bf16, fp32 (default fp16,bf16)")
    p.add_argument("--modes", default="eager,channels_last,cudagraph", help=f"from {','.join(MODES)}")
    p.add_argument("--models", default="adain,din-mobilenet-vgg", help="architectures (default adain,din-mobilenet-vgg)")
    p.add_argument("--iters", type=int, default=20, help="timed iterations (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per row instead of Markdown")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device (use --device cpu --sizes 64x64 --iters 2 for a toy check)")
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in parse_list(args.sizes, "--sizes", str)]
    batches, dtypes = parse_list(args.batches, "--batches"), parse_list(args.dtypes, "--dtypes", str)
    modes, models = parse_list(args.modes, "--modes", str), parse_list(args.models, "--models", str)
    if set(dtypes) - set(DTYPES) or set(modes) - set(MODES) or any(len(s) != 2 for s in sizes):
        raise SystemExit(f"error: dtypes from {list(DTYPES)}, modes from {list(MODES)}, sizes as WxH")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = []
    for name in models:
        model, code = build_model(name, device)
        for w, h in sizes:
            base = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
            try:
                with torch.inference_mode():  # fp32 eager output: the reference for diff_vs_fp32
                    ref = model.stylize(base, code).float().clamp(0, 1)
            except Exception:  # noqa: BLE001 (out of memory in fp32: no precision check)
                ref = None
            for batch in batches:
                for dt in dtypes:
                    for mode in modes:
                        rows.append(bench_one(model, code, base, batch, dt, mode, args, ref))
                        if args.json:
                            print(json.dumps(rows[-1]), flush=True)
                        else:
                            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
            del ref, base
        del model, code
    if not args.json:
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (toy check, not a result)"
        print(header(f"GPU throughput: content path ({gpu})", "torch"))
        cols = [("model", "model"), ("size", "size"), (">batch", "batch"), ("dtype", "dtype"), ("mode", "mode"),
                (">frames/s", "fps"), (">ms/batch", "ms_per_batch"), (">peak GB", "peak_gb"),
                (">max diff vs fp32", "diff_vs_fp32"), ("error", "error")]
        print(markdown_table(cols, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
