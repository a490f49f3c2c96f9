"""Export-time stand-ins that make a model traceable with dynamic H/W, each exactly equal to what it replaces.

* ``F.adaptive_avg_pool2d`` to k x k (k > 1): ONNX has no adaptive pooling, and the TorchScript exporter
  refuses it when the input size is dynamic. Written as two pooling-matrix products built from the
  traced size, with PyTorch's bins (start floor(i*n/k), end ceil((i+1)*n/k)).
* ``DIN.conv``: the batch-folded dynamic conv reshapes the kernel with the traced batch size, so the
  exporter cannot know the kernel shape. The exported graph has batch 1, where the folded conv *is* a
  grouped conv whose weight is the code's kernel (a graph input of static shape). ``DeformableDIN``
  keeps its own conv: grid_sample (ONNX GridSample, opset >= 16) + a matmul contraction trace as they
  are (its torchvision path is skipped while tracing). Stroke control is not a graph input (as trained).
* ``apply_din``: the base class takes ``alpha`` as a Python float (baked in by tracing); here each DIN
  output is blended with a tensor ``alpha`` the same way, so alpha stays a graph input.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from ..errors import DinstyleError
from ..layers.deform import DeformableDIN
from ..layers.din import DIN, pad_same
from ..models.base import StyleTransferNet

_adaptive_avg_pool2d = F.adaptive_avg_pool2d


def _pool_matrix(n, k: int, like: torch.Tensor) -> torch.Tensor:
    """(k, n) matrix averaging each of PyTorch's k adaptive bins over a length-n axis."""
    i = torch.arange(k, device=like.device)
    start = torch.div(i * n, k, rounding_mode="floor")
    end = torch.div((i + 1) * n + (k - 1), k, rounding_mode="floor")
    j = torch.arange(n, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def adaptive_avg_pool2d(x: torch.Tensor, output_size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` that traces to MatMuls for any output size (global pooling is native)."""
    kh, kw = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if (kh, kw) == (1, 1) or kh is None or kw is None:
        return _adaptive_avg_pool2d(x, output_size)
    return _pool_matrix(x.shape[-2], kh, x) @ x @ _pool_matrix(x.shape[-1], kw, x).transpose(0, 1)


@contextlib.contextmanager
def traceable_pooling() -> Iterator[None]:
    """Swap in the traceable adaptive pooling while exporting (module-level, restored on exit)."""
    F.adaptive_avg_pool2d = adaptive_avg_pool2d
    try:
        yield
    finally:
        F.adaptive_avg_pool2d = _adaptive_avg_pool2d


def _single_conv(groups: int):
    def conv(xn: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stroke=None) -> torch.Tensor:
        return F.conv2d(pad_same(xn, weight.shape[-1]), weight[0], bias[0], groups=groups)

    return conv


@contextlib.contextmanager
def traceable_content_path(model: StyleTransferNet, alpha: torch.Tensor) -> Iterator[None]:
    """Within the block, ``model.stylize(..., alpha=1.0)`` blends every DIN level with tensor ``alpha``
    and runs each DIN conv as a batch-1 grouped conv. Instance attributes only; removed on exit."""
    dins = list(model.dins.values())
    unsupported = sorted({type(d).__name__ for d in dins if type(d) not in (DIN, DeformableDIN)})
    if unsupported:
        raise DinstyleError(f"ONNX export does not support {', '.join(unsupported)} layers yet")
    cls_apply = type(model).apply_din

    def apply_din(name: str, x: torch.Tensor) -> torch.Tensor:
        y = cls_apply(model, name, x)  # full style (alpha 1.0 in the stylize context)
        return x + alpha * (y - x)

    folded = [d for d in dins if type(d) is DIN]  # deformable DIN's matmul contraction traces as is
    model.apply_din = apply_din
    for d in folded:
        d.conv = _single_conv(d.groups)
    try:
        yield
    finally:
        del model.apply_din
        for d in folded:
            del d.conv
