#!/usr/bin/env python3
"""Pilot (issue 24 item 3, 2026-12-05): which PyTorch engine runs din-magenta's content path fastest on this
CPU, and how far its output is from eager fp32: eager fp32, channels-last, bf16 autocast (AVX-512 BF16),
torch.compile. Interleaved rounds, median ms at 512x512; max / mean |difference| in 1/255 on a real photo.
ONNX Runtime fp32/int8 are measured by benchmarks/latency.py and benchmarks/quantization.py.

    python benchmarks/pilots/engines.py [--size 512] [--threads 2] [--repeats 7] [--compile]
"""
import argparse, statistics, time, warnings
import torch
from dinstyle.io.images import load_image, pil_to_tensor
from dinstyle.models import load_model
from dinstyle.runtime.controls import resize_long_side


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model("din-magenta").eval()
    x = resize_long_side(pil_to_tensor(load_image("examples/mountain.jpg")), a.size)
    x = torch.nn.functional.interpolate(x, size=(a.size, a.size), mode="bilinear")
    code = model.encode_style(resize_long_side(pil_to_tensor(load_image("src/dinstyle/assets/styles/irises.jpg")), 256))
    cl = load_model("din-magenta").eval().to(memory_format=torch.channels_last)

    def bf16(xx):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.stylize(xx, code).float()
    engines = {"eager fp32": lambda xx: model.stylize(xx, code),
               "channels-last": lambda xx: cl.stylize(xx.contiguous(memory_format=torch.channels_last), code),
               "bf16 autocast": bf16}
    if a.compile:
        comp = torch.compile(lambda xx: model.stylize(xx, code))
        engines["torch.compile"] = comp
    times = {k: [] for k in engines}
    with torch.inference_mode():
        ref = model.stylize(x, code).clamp(0, 1)
        for k, f in engines.items():
            for _ in range(2):
                out = f(x)
            d = (out.clamp(0, 1) - ref).abs() * 255
            print(f"{k}: max diff {float(d.max()):.2f}/255, mean {float(d.mean()):.3f}/255", flush=True)
        for _ in range(a.repeats):
            for k, f in engines.items():
                t = time.perf_counter()
                f(x)
                times[k].append((time.perf_counter() - t) * 1000)
    for k, v in times.items():
        print(f"| {k} | {a.size} | {a.threads} | {statistics.median(v):.1f} |")


if __name__ == "__main__":
    main()
