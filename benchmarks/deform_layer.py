#!/usr/bin/env python3
"""Deformable DIN layer: speed of the plain dynamic conv vs the deformable one (pure PyTorch, and
torchvision's ``deform_conv2d`` when importable), and agreement of the two deformable paths.

    python benchmarks/deform_layer.py [--device cuda] [--sizes 512,1024] [--batch 1] [--json]

Shapes are din-mobilenet-vgg's DIN levels for a square image of each size (1/8, 1/4, 1/2 resolution).
Timings are medians of ``--repeat`` runs after warm-up; they depend on the card, so name it when quoting.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from dinstyle.layers.deform import (_torchvision_deform_conv2d, deform_dynamic_conv2d,
                                    deform_dynamic_conv2d_torchvision)
from dinstyle.layers.din import dynamic_conv2d
from dinstyle.models.din_mobilenet_vgg import DINMobileNetVGGConfig

PATHS = {"plain": None, "deform-pytorch": deform_dynamic_conv2d, "deform-torchvision": deform_dynamic_conv2d_torchvision}


def level_shapes(size: int) -> list[tuple[str, int, int, int]]:
    """(level, channels, groups, side) of each DIN level for a size x size image (default config)."""
    c = DINMobileNetVGGConfig()
    (w2, w4, w8), (g8, g4, g2) = c.widths, c.din_groups
    return [("din8", w8, g8, size // 8), ("din4", w4, g4, size // 4), ("din2", w2, g2, size // 2)]


def run_once(path: str, args: list[torch.Tensor], backward: bool) -> None:
    x, weight, bias, offset, mask = args
    groups = x.shape[1] // weight.shape[2]
    if path == "plain":
        y = dynamic_conv2d(x, weight, bias, groups)
    else:
        y = PATHS[path](x, weight, bias, offset, mask, groups)
    if backward:
        y.square().mean().backward()


def timed(fn, device: torch.device, repeat: int) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def make_inputs(b: int, c: int, g: int, side: int, device, grad: bool):
    gen = torch.Generator(device="cpu").manual_seed(0)
    t = [torch.randn(b, c, side, side, generator=gen), torch.randn(b, c, c // g, 3, 3, generator=gen) * 0.1,
         torch.randn(b, c, generator=gen), torch.randn(b, 18, side, side, generator=gen) * 1.5,
         torch.rand(b, 9, side, side, generator=gen) * 2]
    return [v.to(device).requires_grad_(grad) for v in t]


def agreement(device) -> dict:
    """Max |difference| between the two deformable paths (values and input gradients), float32."""
    if _torchvision_deform_conv2d() is None:
        return {}
    args = make_inputs(2, 32, 4, 24, device, True)
    a = deform_dynamic_conv2d(*args, groups=4)
    b = deform_dynamic_conv2d_torchvision(*args, groups=4)
    r = torch.randn_like(a)
    ga = torch.autograd.grad((a * r).sum(), args)
    gb = torch.autograd.grad((b * r).sum(), args)
    return {"value": float((a - b).detach().abs().max()),
            "grad": max(float((p - q).abs().max()) for p, q in zip(ga, gb))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", default="512,1024")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    paths = [k for k in PATHS if k != "deform-torchvision" or _torchvision_deform_conv2d() is not None]
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        for level, c, g, side in level_shapes(size):
            for backward in (False, True):
                args = make_inputs(a.batch, c, g, side, device, backward)
                ctx = torch.enable_grad if backward else torch.no_grad
                for path in paths:
                    with ctx():
                        ms = timed(lambda: run_once(path, args, backward), device, a.repeat)
                    rows.append({"size": size, "level": level, "channels": c, "groups": g, "side": side,
                                 "pass": "fwd+bwd" if backward else "fwd", "path": path, "ms": round(ms, 3)})
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "batch": a.batch, "agreement": agreement(device), "rows": rows}
    if a.json:
        print(json.dumps(result))
        return 0
    print(f"device: {result['device']}, batch {a.batch}, torchvision agreement: {result['agreement'] or 'n/a'}\n")
    print("| image | level | C/groups | map | pass | " + " | ".join(f"{q} ms" for q in paths) + " |")
    print("|---|---|---|---|---|" + "---:|" * len(paths))
    for i in range(0, len(rows), len(paths)):
        r = rows[i]
        cells = " | ".join(f"{rows[i + j]['ms']:.3f}" for j in range(len(paths)))
        print(f"| {r['size']} | {r['level']} | {r['channels']}/{r['groups']} | {r['side']}² | {r['pass']} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
