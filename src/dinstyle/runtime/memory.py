"""How many pixels one pass may take at once: the memory there is, over what the model needs per pixel.

    budget (pixels) = fraction x available_bytes(device) / (bytes_per_pixel(model) + HELD_BYTES_PER_PIXEL)

``available_bytes``: what the device can still give (CPU: the kernel's MemAvailable, capped by the container's
cgroup limit; CUDA: the driver's free memory plus what PyTorch's cache holds unused). ``bytes_per_pixel``: the
peak of memory allocated during one content pass, per input pixel, measured once per model, device and dtype
on a 256 x 256 input (``PROBE``) by the allocator itself (the profiler's memory events), so it counts every
activation *and* the scratch buffers inside operators (convolutions' workspaces), which a count of tensors
misses: on the CPU that is 1.5-1.7x more for din-magenta and din-fast, and the profiler's figure matched the
process's peak RSS within ~10% at 1536 x 1536. ``HELD_BYTES_PER_PIXEL``: the finished full-size float32
images the runner keeps while a pass runs (the restore's first pass, a stroke scale's other pass, the resized
output waiting for its native pass' detail; ``runner``). The fraction leaves room for what is not measured
(the allocator's fragmentation, several region codes, other processes): on the CPU running out of memory is
usually the kernel killing the process, so half; on a GPU an out-of-memory error is caught and the runner
retries in tiles, so 0.8.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from typing import Optional

import torch

from .engine import engine_input
from ..models.base import StyleTransferNet
from ..models.stylecode import StyleCode

PROBE = 256  # side of the square input the footprint is measured on
FRACTIONS = {"cpu": 0.5}  # of the available memory one pass may use; other devices: DEFAULT_FRACTION
DEFAULT_FRACTION = 0.8
HELD_BYTES_PER_PIXEL = 3 * 3 * 4  # three float32 RGB images at the photo's size, alive during a pass
# Tiled, the whole image stays in memory besides one tile's pass: the padded input, the blended output and
# its weights (float32: 12 + 12 + 4 bytes per pixel; ``tiling._Tiles``).
TILED_IMAGE_BYTES_PER_PIXEL = 28
# When the memory cannot be read at all (no /proc, no psutil): a laptop that runs this has at least that free.
FALLBACK_AVAILABLE = 2 * 2**30
# When the footprint cannot be measured (another profiler is running, an allocator that reports nothing):
# about 3x the largest measured (din-fast, fp32 CPU: ~330 B/px). Not cached: the next call measures.
FALLBACK_BYTES_PER_PIXEL = 1024

_FOOTPRINTS: "weakref.WeakKeyDictionary[StyleTransferNet, dict]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()  # one measurement at a time (two profilers cannot run at once)


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Bytes the device can still allocate now."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # what PyTorch's caching allocator holds but no tensor uses is ours too
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "mps" and hasattr(torch.mps, "recommended_max_memory"):
        return max(0, int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()))
    return _host_available()


def _host_available() -> int:
    avail = _meminfo_available()
    if avail is None:
        try:
            import psutil

            avail = int(psutil.virtual_memory().available)
        except ImportError:
            avail = FALLBACK_AVAILABLE
    headroom = _cgroup_headroom()  # in a container, MemAvailable is the host's
    return avail if headroom is None else min(avail, headroom)


def _meminfo_available() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> Optional[int]:
    """The container's cgroup limit minus what it uses (its inactive file cache counted free), or None without
    a limit. cgroup v2, else v1."""
    for folder, limit_f, usage_f, inactive in (("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"),
                                               ("/sys/fs/cgroup/memory", "memory.limit_in_bytes",
                                                "memory.usage_in_bytes", "total_inactive_file")):
        try:
            with open(f"{folder}/{limit_f}") as f:
                limit = f.read().strip()
            if limit == "max" or int(limit) >= 2**60:  # v1 writes "no limit" as a huge number
                return None
            with open(f"{folder}/{usage_f}") as f:
                usage = int(f.read())
            with open(f"{folder}/memory.stat") as f:
                stat = dict(line.split()[:2] for line in f)
            return max(0, int(limit) - usage + int(stat.get(inactive, 0)))
        except (OSError, ValueError):
            continue
    return None


def bytes_per_pixel(model: StyleTransferNet, code: Optional[StyleCode] = None) -> float:
    """Peak bytes allocated on the model's device during one content pass (input and output included), per
    input pixel, at the model's dtype: measured once per model, device and dtype (``_FOOTPRINTS``, which holds no
    model alive). ``code``: a style code to run with (default: that of a gray image)."""
    footprint, _measured = footprint_of(model, code)
    return footprint


def footprint_of(model: StyleTransferNet, code: Optional[StyleCode] = None) -> tuple[float, bool]:
    """``bytes_per_pixel`` and whether it was measured (False: ``FALLBACK_BYTES_PER_PIXEL``)."""
    p = next(model.parameters())
    key = (str(p.device), p.dtype)
    cached = _FOOTPRINTS.get(model, {}).get(key)
    if cached is not None:
        return cached, True
    with _LOCK:
        cached = _FOOTPRINTS.get(model, {}).get(key)
        if cached is not None:
            return cached, True
        peak = _measure_peak(model, code, PROBE)
        if peak is None:
            return float(FALLBACK_BYTES_PER_PIXEL), False
        value = peak / (PROBE * PROBE)
        _FOOTPRINTS.setdefault(model, {})[key] = value
        return value, True


def _measure_peak(model: StyleTransferNet, code: Optional[StyleCode], size: int) -> Optional[int]:
    """Peak bytes allocated on the model's device while it stylizes a ``size`` x ``size`` image (the input made
    inside the window, so counted), from the allocator's own events; None when they cannot be had."""
    from torch.autograd import profiler

    if torch.autograd._profiler_enabled():  # a user's profiler is running: one at a time
        return None
    p = next(model.parameters())
    with torch.inference_mode():
        if code is None:
            code = model.encode_style(torch.full((1, 3, model.style_size, model.style_size), 0.5,
                                                 device=p.device, dtype=p.dtype))
        code = code.select(0).to(p.device, p.dtype)
        # CPU activity is enough: an allocator reports to the profiler whatever device it serves
        prof = profiler.profile(profile_memory=True)
        try:
            with _quiet_stderr():  # some torch builds log two lines when a profiler starts and stops
                prof.__enter__()
            try:
                x = torch.rand(1, 3, size, size, device=p.device, dtype=p.dtype)
                type(model).stylize(model, engine_input(x), code)  # the class's: a spy on the instance sees only real passes
                del x
            finally:
                with _quiet_stderr():
                    prof.__exit__(None, None, None)
            events = sorted((e for e in prof.kineto_results.events() if e.name() == "[memory]"
                             and e.device_type().name.lower() == p.device.type), key=lambda e: e.start_ns())
        except (RuntimeError, AttributeError):  # the profiler's API moved, or it refused to start
            return None
    live = peak = 0
    for e in events:
        live += e.nbytes()  # negative for a free
        peak = max(peak, live)
    return peak or None


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for the duration (the C++ logger writes there, not to ``sys.stderr``);
    only around the profiler's start and stop, a few milliseconds."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr to quiet
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def fraction_for(device: torch.device | str) -> float:
    return FRACTIONS.get(torch.device(device).type, DEFAULT_FRACTION)


def untiled_pixel_budget(model: StyleTransferNet, device: torch.device | str | None = None,
                         fraction: Optional[float] = None, code: Optional[StyleCode] = None, reserve: int = 0) -> int:
    """How many pixels (summed over a batch) one pass may take in one piece on ``device`` (default: the
    model's): ``fraction`` (default ``fraction_for(device)``) of its available memory, less ``reserve`` bytes,
    over the bytes one pixel costs; at least 1."""
    device = next(model.parameters()).device if device is None else torch.device(device)
    fraction = fraction_for(device) if fraction is None else fraction
    usable = fraction * available_bytes(device) - reserve
    return max(1, int(usable / (bytes_per_pixel(model, code) + HELD_BYTES_PER_PIXEL)))


def tile_pixel_budget(model: StyleTransferNet, image_pixels: int, device: torch.device | str | None = None,
                      fraction: Optional[float] = None, code: Optional[StyleCode] = None) -> int:
    """The same budget for one tile (its halo included) when the tiled image itself, ``image_pixels`` in all,
    lives on that device too (``TILED_IMAGE_BYTES_PER_PIXEL``)."""
    return untiled_pixel_budget(model, device, fraction, code, reserve=image_pixels * TILED_IMAGE_BYTES_PER_PIXEL)
