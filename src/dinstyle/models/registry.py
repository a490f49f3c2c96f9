"""Build any model by name, and save/load self-describing model files.

A model file is safetensors holding the trainable weights only (frozen backbones come from their own
packages) with metadata: format, arch, config (JSON: the architecture's arguments), style backbone, dinstyle
version, and free-form training info (read back as ``model.pretrained``, see ``pretrained.py``). Files from
before the one alpha policy are read by ``legacy.py``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..defaults import DEFAULT_MODEL
from ..errors import first_line
from ..io.tensorfiles import FORMAT, FORMAT_VERSION, WeightsError, load_safetensors, save_safetensors
from ..version import __version__
from .adain import AdaIN, AdaINConfig
from .base import StyleTransferNet
from .config_check import config_problem
from .din_fast import DINFast, DINFastConfig, DINFastDeform
from .din_magenta import DINMagenta, DINMagentaConfig
from .din_mobilenet import DINMobileNet, DINMobileNetConfig
from .din_mobilenet_vgg import DINMobileNetVGG, DINMobileNetVGGConfig, DINMobileNetVGGDeform
from .din_vgg import DINVGG, DINVGGConfig
from .legacy import architecture_arguments, upgrade_file
from .pretrained import PretrainedInfo

ARCHS: dict[str, tuple[type[StyleTransferNet], type, dict]] = {
    "din-mobilenet": (DINMobileNet, DINMobileNetConfig, {}),
    "din-mobilenet-vgg": (DINMobileNetVGG, DINMobileNetVGGConfig, {}),
    "din-mobilenet-vgg-deform": (DINMobileNetVGGDeform, DINMobileNetVGGConfig, {"deformable": True}),
    "din-fast": (DINFast, DINFastConfig, {}),
    "din-fast-deform": (DINFastDeform, DINFastConfig, {"deformable": True}),
    "din-magenta": (DINMagenta, DINMagentaConfig, {}),
    "din-vgg": (DINVGG, DINVGGConfig, {}),
    "adain": (AdaIN, AdaINConfig, {}),
}


def _config(cls: type, values: dict) -> Any:
    """Dataclass from a dict (lists from JSON become tuples); unknown keys, wrong types and values out of
    range (``config_check``) are an error, before any layer is built."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown config keys for {cls.__name__}: {sorted(unknown)}")
    problem = config_problem(cls, values)
    if problem:
        raise ValueError(problem)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def create_model(arch: str, **config: Any) -> StyleTransferNet:
    """A fresh (untrained) model: ``create_model("din-mobilenet-vgg", style_encoder="random-vgg19")``. A retired
    ``alpha`` argument is refused (``legacy``); ``alpha="content"``, the one policy, is accepted and dropped."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
    model_cls, cfg_cls, preset = ARCHS[arch]
    return model_cls(_config(cfg_cls, {**preset, **architecture_arguments(config)}))


def save_model(model: StyleTransferNet, path: str | Path, info: dict | None = None, half: bool = False) -> None:
    """Write the trainable weights + metadata. ``half`` stores fp16 (loaded back as fp32)."""
    tensors = model.trainable_state_dict()
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **model.describe(),
            "style_backbone": model.config.style_encoder, "version": __version__,
            "info": info or {}}
    save_safetensors(path, tensors, meta)


def check_model_config(path: str | Path, meta: dict) -> None:
    """A model file's config holds only keys its architecture knows, each of the right type and in range
    (``config_check``; an unknown architecture is left to the caller, which names what it expected)."""
    arch, config = meta.get("arch"), meta.get("config", {})
    if arch in ARCHS:
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(ARCHS[arch][1])})
        if unknown:
            raise WeightsError(f"{path}: model file config has keys {arch} does not know: "
                               f"{', '.join(map(str, unknown))}"[:200])
        problem = config_problem(ARCHS[arch][1], config)
        if problem:
            raise WeightsError(f"{path}: model file config: {problem}")


def read_model_file(path: str | Path) -> tuple[dict, dict]:
    """Tensors and metadata of a safetensors file, every check done (``load_safetensors``'s, and a dinstyle
    model file's config keys against its architecture), an older model file read as today's (``legacy``)."""
    tensors, meta = load_safetensors(path)
    if meta.get("format") == FORMAT:
        meta, tensors = upgrade_file(path, meta, tensors)
        check_model_config(path, meta)
    return tensors, meta


def check_weights(expected: dict, tensors: dict, path: str | Path, what: str) -> None:
    """A file's tensors have exactly the names and shapes of ``expected`` (a model's trainable state), or a
    one-line error (``what`` names the model in it)."""
    missing, extra = expected.keys() - tensors.keys(), tensors.keys() - expected.keys()
    if missing or extra:
        raise WeightsError(f"{path}: weights do not match {what} (missing {len(missing)}, unexpected {len(extra)})")
    for k, v in tensors.items():
        if v.shape != expected[k].shape:
            raise WeightsError(f"{path}: {k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}")


def load_weights(model: StyleTransferNet, tensors: dict, path: str | Path, what: str) -> None:
    """Put a file's trainable weights into ``model``: the same names and shapes (``check_weights``)."""
    expected = model.trainable_state_dict()
    check_weights(expected, tensors, path, what)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=False)


def load_model_file(path: str | Path, **overrides: Any) -> StyleTransferNet:
    """Rebuild a model from its file (any architecture in the registry)."""
    tensors, meta = read_model_file(path)
    if meta.get("format") != FORMAT or meta.get("arch") not in ARCHS:
        raise WeightsError(f"{path}: not a dinstyle model file (format={meta.get('format')!r}, arch={meta.get('arch')!r})")
    arch, config = meta["arch"], {**meta.get("config", {}), **overrides}
    # In-range values can still combine into terabytes (1024 channels, 15x15 kernels, no groups): the model
    # is first built on the meta device (no memory, no time) and must have the file's shapes.
    check_weights(_build(path, arch, config, "meta").trainable_state_dict(), tensors, path, arch)
    model = _build(path, arch, config)
    load_weights(model, tensors, path, arch)
    model.pretrained = PretrainedInfo.from_file(path, meta.get("info", {}))
    return model.eval()


def _build(path: str | Path, arch: str, config: dict, device: str | None = None) -> StyleTransferNet:
    """``create_model`` for a file's config: what the model's constructor refuses is a one-line error."""
    try:
        with torch.device(device) if device else contextlib.nullcontext():
            return create_model(arch, **config)
    except (ValueError, TypeError, KeyError) as e:
        raise WeightsError(f"{path}: its config does not describe a {arch} model ({first_line(e, 160)})") from None


def bundled_model_path(name: str) -> Path | None:
    """The trained weights shipped in the package for ``name``, if any."""
    p = Path(str(resources.files("dinstyle").joinpath("assets", "models", f"{name}.safetensors")))
    return p if p.is_file() else None


def load_model(name_or_file: str = DEFAULT_MODEL, **overrides: Any) -> StyleTransferNet:
    """A model file path, or a registered name (bundled trained weights when shipped, else untrained)."""
    name = DEFAULT_MODEL if name_or_file in ("", "default") else name_or_file
    if name in ARCHS:
        path = bundled_model_path(name)
        if path is not None:
            return load_model_file(path, **overrides)
        warnings.warn(f"no trained weights are bundled for {name!r}: using an UNTRAINED model "
                      "(output is not a real stylization)", stacklevel=2)
        return create_model(name, **overrides).eval()  # pretrained: PretrainedInfo(trained=False)
    path = Path(name)
    if not path.exists():
        raise WeightsError(f"{name}: neither a model file nor a known architecture ({', '.join(ARCHS)})")
    return load_model_file(path, **overrides)


def weights_fingerprint(model: StyleTransferNet) -> str:
    """A short hash of the trainable weights; style codes and exports carry it to detect other weights."""
    h = hashlib.sha256()
    for k, v in sorted(model.trainable_state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def model_id(model: StyleTransferNet) -> str:
    """A short id for metadata: arch + file name (or 'untrained')."""
    f = model.pretrained.file
    return f"{model.arch}:{Path(f).name if f else 'untrained'}"


__all__ = ["ARCHS", "DEFAULT_MODEL", "create_model", "load_model", "load_model_file", "save_model", "model_id"]
