"""How the content network runs: PyTorch eager; on the CPU with more than one thread, the image in channels-last
(NHWC) layout.

Chosen by measurement (``python benchmarks/engines.py --compile``, table in ``benchmarks/RESULTS.md``; issue 24):
din-magenta and din-mobilenet at 256-1024 px on an AVX-512 CPU, with the runner's per-level hook in place.

* channels-last: with 2 threads 1.1-1.45x faster than NCHW (din-magenta 401 vs 576 ms at 1024), the same output
  to 0.001/255 (oneDNN's NHWC convolutions); with 1 thread 5-20% slower at 256-512, so NCHW there. Only the input
  needs the layout: the layers keep it.
* ``torch.compile``: 1.7-1.9x faster than channels-last on a fixed shape, but only while the hook can be traced.
  The hooks that whole-image statistics (tiles), time-smoothed statistics (video) and cancellation (the server)
  need break its graph, and with them it was no faster than eager, after 1.6-6.4 s of compiling per new image
  size (warm cache; 8-15 s cold).
* bfloat16 autocast (AVX-512 BF16): 1.1-1.3x over channels-last, but 4-7/255 off the float result (the limit is 2).
* ONNX Runtime: 1.3-1.9x over channels-last at 512-1024, through ``dinstyle export`` and ``dinstyle.lite``,
  without the hooks (no tiles with whole-image statistics, no video smoothing, no cancellation inside a pass).

On a GPU the layout is left as it is (not measured there).

* The allocator (``tune_allocator``): a CPU pass allocates a few dozen maps of up to tens of MB. glibc hands every
  block over 128 kB-32 MB to the kernel on ``free`` and maps it fresh, page faults included, on the next
  ``malloc``: din-magenta at 512 px spent a third of its time there (48-57 ms a pass, 31-36 ms with the blocks kept;
  280 against 136 ms at 1024). So a Stylizer on the CPU raises glibc's mmap and trim thresholds to
  ``KEEP_BYTES``, as PyTorch's CPU guides do with jemalloc or tcmalloc. The cost: up to ``KEEP_BYTES`` of freed
  memory stays with the process. ``DINSTYLE_MALLOC=system`` leaves malloc alone.
"""
from __future__ import annotations

import ctypes
import os
import sys

import torch

WHY = ("measured fastest among the exact engines that keep the per-level hooks tiles, video and cancellation "
       "need; channels-last only pays with more than one thread (runtime/engine.py, benchmarks/engines.py)")


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
