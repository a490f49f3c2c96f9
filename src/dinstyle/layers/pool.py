"""Adaptive average pooling that also exports: the same numbers as ``F.adaptive_avg_pool2d`` always.

ONNX has no adaptive pooling and the TorchScript exporter refuses it when the input size is dynamic, so
while tracing, pooling to k x k (k > 1) is written as two pooling-matrix products built from the traced
size, with PyTorch's bins (start floor(i*n/k), end ceil((i+1)*n/k)). Eager calls use the native op.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _pool_matrix(n, k: int, like: torch.Tensor) -> torch.Tensor:
    """(k, n) matrix averaging each of PyTorch's k adaptive bins over a length-n axis."""
    i = torch.arange(k, device=like.device)
    start = torch.div(i * n, k, rounding_mode="floor")
    end = torch.div((i + 1) * n + (k - 1), k, rounding_mode="floor")
    j = torch.arange(n, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def pooling_matmul(x: torch.Tensor, k: int) -> torch.Tensor:
    """Adaptive average pooling to k x k as matrix products (traceable with dynamic H, W)."""
    return _pool_matrix(x.shape[-2], k, x) @ x @ _pool_matrix(x.shape[-1], k, x).transpose(0, 1)


def adaptive_avg_pool2d(x: torch.Tensor, k: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, k)``, as matrix products while tracing for export (global pooling is native)."""
    if k > 1 and (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
        return pooling_matmul(x, k)
    return F.adaptive_avg_pool2d(x, k)
