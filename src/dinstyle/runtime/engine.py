"""How the content network runs: PyTorch eager, in the fast forms of ``layers.fast_conv`` (the models pick them);
on the CPU with more than one thread the image in channels-last (NHWC) layout; on the CPU, malloc that keeps
freed blocks.

Chosen by measurement (``python benchmarks/engines.py --compile``, tables in ``benchmarks/RESULTS.md``; issue 24):
din-magenta and din-mobilenet at 256-1024 px on a 2-core AVX-512 CPU, with the runner's per-level hook in place.
At 512 px with 2 threads din-magenta takes 30 ms here against 47 ms in the plain forms, 60 ms on ONNX Runtime
and 70 ms for Magenta's int8 graph.

* The fast forms (``layers.fast_conv``, DIN's fused 1x1 path, two-pass statistics): the convs that ran at full
  size with 3-16 channels run as exact half-size rewrites, and instance norm + a 1x1 DIN is one pass.
  1.4-1.6x (1 and 2 threads, 256-1024 px), within 0.001/255 of the plain forms (``layers.reference``).
* channels-last: with 2 threads up to 1.45x faster than NCHW, the same output to 0.001/255 (oneDNN's NHWC
  convolutions); with 1 thread 5-20% slower at 256-512, so NCHW there. Only the input needs the layout.
* The allocator (``tune_allocator``): a CPU pass allocates a few dozen maps of up to tens of MB. glibc hands
  every block over its mmap threshold (128 kB, rising to at most 32 MB) back to the kernel on ``free`` and maps it
  fresh, page faults included, on the next ``malloc``: din-magenta took 38 against 30 ms at 512 px, 193 against
  126 ms at 1024, and a 12 MP photo 2.6x as long. So a Stylizer on the CPU raises glibc's mmap and trim
  thresholds to ``KEEP_BYTES``, as PyTorch's CPU guides do with jemalloc or tcmalloc. The cost: up to
  ``KEEP_BYTES`` of freed memory stays with the process. ``DINSTYLE_MALLOC=system`` leaves malloc alone.
* Not used, measured: ``torch.compile`` was no faster than these eager forms (39.5 vs 29.9 ms at 512) and compiles
  3-6 s per new size; the hooks tiles, video and cancellation need break its graph. bfloat16 autocast is 4-8/255
  off the float result (the limit is 2). ONNX Runtime (``dinstyle export``, ``dinstyle.lite``) runs the plain forms,
  1.6-2x slower than this, and has no hooks (no tiles with whole-image statistics, no video smoothing, no
  cancellation inside a pass).

On a GPU the layout is left as it is and the allocator is PyTorch's own (not measured there).
"""
from __future__ import annotations

import ctypes
import os
import sys

import torch

WHY = ("measured fastest of the exact engines (eager in the fast forms beat torch.compile and ONNX Runtime) and it "
       "keeps the per-level hooks tiles, video and cancellation need; channels-last only pays with more than one "
       "thread (runtime/engine.py, benchmarks/engines.py)")


def _channels_last(device: torch.device) -> bool:
    return device.type == "cpu" and torch.get_num_threads() > 1


def describe(device: torch.device) -> str:
    """The engine in words, as ``dinstyle info`` prints it."""
    layout = "PyTorch eager, channels-last" if _channels_last(device) else "PyTorch eager"
    return f"{layout}; {tune_allocator()}" if device.type == "cpu" else layout


KEEP_BYTES = 512 << 20  # covers every map of a pass up to about 16 MP (din-magenta's 8-channel full-size maps)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_allocator: str | None = None


def tune_allocator() -> str:
    """Keep freed blocks up to ``KEEP_BYTES`` in the process (see the module doc); once per process. Returns
    what the allocator is, in words."""
    global _allocator
    if _allocator is None:
        _allocator = _keep_freed_blocks()
    return _allocator


def _keep_freed_blocks() -> str:
    if os.environ.get("DINSTYLE_MALLOC", "").lower() == "system":
        return "system malloc (DINSTYLE_MALLOC=system)"
    if not sys.platform.startswith("linux"):
        return "system malloc"
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc's, in this process (absent on musl)
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return "system malloc (no mallopt)"
    if mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES) != 1 or mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES) != 1:
        return "system malloc (mallopt refused)"
    return f"malloc keeps freed blocks up to {KEEP_BYTES >> 20} MB"


def engine_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) in the layout the engine runs fastest: channels-last on the CPU with several threads."""
    if x.dim() == 4 and _channels_last(x.device):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def engine_output(y: torch.Tensor) -> torch.Tensor:
    """The network's output back in the plain layout callers index and save."""
    return y.contiguous()
