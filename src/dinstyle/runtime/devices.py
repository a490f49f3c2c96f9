"""Device choice: 'auto' -> CUDA, else MPS, else CPU; float16 only where it pays."""
from __future__ import annotations

import torch

from ..errors import UsageError


def pick_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda, else mps, else cpu; an explicit device that is not available is a usage error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = str(device).split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available (try --device auto)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps: Apple MPS is not available (try --device auto)")
    if kind not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {device}: choose auto, cpu, cuda or mps")
    return torch.device(device)


def check_half(device: torch.device, half: bool | None) -> None:
    """float16 is for GPUs: on the CPU it is about 12x slower than float32 and no more exact."""
    if half and device.type == "cpu":
        raise UsageError("--half: float16 on the CPU is about 12x slower than float32; use it with a CUDA or MPS "
                         "device (--device), or leave it out")
