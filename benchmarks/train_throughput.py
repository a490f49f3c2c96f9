"""Training throughput (images/s) of `dinstyle train`'s step for several architectures and batch sizes.

Times the full optimisation step (style encoding, content path, alpha=0 reconstruction, loss networks,
backward, Adam) on synthetic batches already on the device, so the data loader is not measured.
Defaults: 256x256, batch 8 and 32, din-mobilenet-vgg and adain, bf16 autocast + channels_last on CUDA.

    python benchmarks/train_throughput.py                          # the GPU table
    python benchmarks/train_throughput.py --size 64 --steps 3      # toy scale, runs on a CPU
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch

from dinstyle.train.config import resolve
from dinstyle.train.distributed import pick_device
from dinstyle.train.learner import Learner, build_model
from dinstyle.train.objectives import PaperObjective


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(arch: str, batch: int, args, device: torch.device) -> dict:
    """images/s and ms/step over ``args.steps`` timed steps after ``args.warmup`` untimed ones."""
    model_cfg = {"style_encoder": args.style_encoder} if args.style_encoder else {}
    cfg = resolve({"arch": arch, "model": model_cfg, "batch_size": batch, "size": args.size, "loss_net": args.loss_net,
                   "precision": args.precision, "compile": args.compile, "device": str(device)})
    row = {"arch": arch, "batch": batch, "size": args.size}
    try:
        cfg, model = build_model(cfg, device)
        learner = Learner(cfg, model, PaperObjective(cfg, model, device), device)
        row["precision"] = "bf16" if learner.amp_dtype is not None else "fp32"
        g = torch.Generator(device="cpu").manual_seed(0)
        images = {k: (torch.rand(batch, 3, args.size, args.size, generator=g) * 255).to(torch.uint8)
                  for k in ("content", "style")}
        images = learner.to_device(images)  # already on the device: the loader is not measured
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for i in range(args.warmup):
            learner.step(i, images)
        _sync(device)
        t = time.perf_counter()
        for i in range(args.steps):
            learner.step(args.warmup + i, images)
        _sync(device)
        dt = time.perf_counter() - t
        row.update(images_per_s=batch * args.steps / dt, ms_per_step=1000 * dt / args.steps,
                   params_m=sum(p.numel() for p in learner.params) / 1e6)
        if device.type == "cuda":
            row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    except torch.cuda.OutOfMemoryError:
        row["error"] = "out of memory"
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def markdown(rows: list[dict], device: str) -> str:
    lines = [f"Training throughput on {device}, torch {torch.__version__}",
             "", "| arch | batch | size | precision | images/s | ms/step | trainable params (M) | peak GPU mem (GiB) |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['batch']} | {r['size']} | {r.get('precision', '')} | {r['error']} | | | |")
            continue
        peak = f"{r['peak_gib']:.2f}" if "peak_gib" in r else "-"
        lines.append(f"| {r['arch']} | {r['batch']} | {r['size']} | {r['precision']} | {r['images_per_s']:.1f} | "
                     f"{r['ms_per_step']:.1f} | {r['params_m']:.2f} | {peak} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="din-mobilenet-vgg,adain", help="comma-separated architectures")
    p.add_argument("--batches", default="8,32", help="comma-separated batch sizes")
    p.add_argument("--size", type=int, default=256, help="square crop size (default 256)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per configuration (default 20)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5 on CUDA, else 1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--loss-net", default="vgg19", help="loss network (default vgg19)")
    p.add_argument("--style-encoder", default="", help="style encoder override (default: the model's)")
    p.add_argument("--compile", action="store_true", help="torch.compile the step (CUDA)")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    if args.warmup is None:
        args.warmup = 5 if device.type == "cuda" else 1
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = [measure(a, int(b), args, device) for a in args.archs.split(",") for b in args.batches.split(",")]
    print(markdown(rows, device_name(device)))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
