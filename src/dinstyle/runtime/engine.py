"""How the content network runs: PyTorch eager, with CPU images in channels-last (NHWC) layout.

Chosen by measurement (``benchmarks/pilots/engines.py``, issue 24), din-magenta / din-mobilenet at 512x512 on
2 AVX-512 cores, with the runner's per-level statistics hook in place:

* channels-last: 1.2-1.45x faster than NCHW, outputs within 0.001/255 (oneDNN's NHWC convolutions); only the
  input needs the layout, the layers keep it.
* ``torch.compile`` is 2.5x faster on a fixed shape, but only while the hook can be traced: the hooks that
  whole-image statistics (tiles), time-smoothed statistics (video) and cancellation need break the graph, and
  with them it was slower than eager (110-120 ms vs 104 ms), after 8-15 s of compiling per new image size.
* bfloat16 autocast: 1.2x, but up to 7-10/255 off the float result (the issue's limit is 2/255).
* ONNX Runtime: 2.2-2.4x, through ``dinstyle export`` and ``dinstyle.lite`` (no per-level hooks: no tiles
  with whole-image statistics, no video smoothing).

On a GPU the layout is left as it is (untested there).
"""
from __future__ import annotations

import torch

WHY = ("measured fastest among exact engines with the per-level hooks tiles, video and cancellation need "
       "(runtime/engine.py, benchmarks/pilots/engines.py)")


def describe(device: torch.device) -> str:
    """The engine in words, as ``dinstyle info`` prints it."""
    return "PyTorch eager, channels-last" if device.type == "cpu" else "PyTorch eager"


def engine_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) in the layout the engine runs fastest: channels-last on the CPU."""
    if x.device.type == "cpu" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def engine_output(y: torch.Tensor) -> torch.Tensor:
    """The network's output back in the plain layout callers index and save."""
    return y.contiguous()
