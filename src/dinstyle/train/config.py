"""Training configuration: one dataclass, TOML in and out, CLI overrides on top.

Precedence: built-in defaults < ``--config FILE.toml`` < command-line flags. On ``--resume`` the run's
own ``config.toml`` replaces the defaults and only settings that do not change the computation may
be overridden (so the resumed run is the run that was started).
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..errors import DinstyleError, UsageError

PRECISIONS = ("auto", "fp32", "bf16")


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its command-line help text (the CLI is generated from these)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # --- data
    content: str = _f("", "folder of content images (searched recursively)")
    style: str = _f("", "folder of style images (searched recursively)")
    size: int = _f(256, "square training crop size in pixels")
    crop_scale: tuple[float, float] = _f((1.0, 2.0), "short side is resized to size x U(a, b) before the random crop")
    flip: bool = _f(True, "random horizontal flips")
    max_pixels: int = _f(100_000_000, "images with more pixels are skipped (decompression-bomb guard)")
    workers: int = _f(4, "DataLoader worker processes (0 = load in the main process)")
    sample_count: int = _f(4, "fixed held-out content/style pairs shown in the sample grids")
    # --- model
    arch: str = _f("", "architecture (default din-mobilenet-vgg, or the one of --init)")
    model: dict = _f({}, "model config overrides (TOML [model] table)", cli=False)
    style_encoder: str = _f("", "style encoder backbone (sets model.style_encoder)", resolved=False)
    init: str = _f("", "start from the weights of this model file")
    # --- losses
    loss_net: str = _f("", "loss network for both content and style terms", resolved=False)
    content_loss_net: str = _f("vgg19", "loss network of the content term")
    style_loss_net: str = _f("vgg19", "loss network of the style term")
    loss_net_seed: int = _f(0, "seed of random-* loss networks")
    content_tap: int = _f(3, "index into the loss net's 4 style taps used by the content term (3 = deepest)")
    style_taps: tuple[int, ...] = _f((0, 1, 2, 3), "loss-net taps (0 = shallowest) used by the style term")
    normalize_loss_features: bool = _f(True, "divide loss-net features by fixed per-tap scales (unit-RMS, like "
                                             "AdaIN's normalised VGG) so weights mean the same for every loss net")
    content_weight: float = _f(1.0, "weight of the content term")
    style_weight: float = _f(10.0, "weight of the style (mean/std matching) term")
    identity_weight: float = _f(1.0, "weight of the L1 term making alpha=0 reconstruct the content")
    tv_weight: float = _f(0.0, "weight of the total-variation term")
    # --- optimisation
    steps: int = _f(160_000, "total training steps (optimizer iterations)")
    batch_size: int = _f(8, "images per step and per process")
    lr: float = _f(1e-4, "Adam learning rate at step 0")
    lr_decay: float = _f(5e-5, "inverse decay: lr = lr0 / (1 + lr_decay * step)")
    grad_clip: float = _f(0.0, "clip the gradient norm to this (0 = off)")
    freeze: tuple[str, ...] = _f((), "parameter-name prefixes kept fixed, e.g. contract,convs,style_encoder.predictor "
                                     "(fine-tuning a converted or trained model)")
    max_bad_steps: int = _f(20, "stop after this many consecutive non-finite steps")
    seed: int = _f(0, "random seed (model init, data order, crops)")
    # --- runtime
    device: str = _f("auto", "auto|cpu|cuda|cuda:N|mps")
    precision: str = _f("auto", "auto (bf16 on CUDA, else fp32) | fp32 | bf16")
    compile: bool = _f(False, "torch.compile the training step (CUDA)")
    # --- output
    run: str = _f("", "run folder: config, log, checkpoints, samples, model")
    log_every: int = _f(50, "write a log.jsonl entry every N steps")
    sample_every: int = _f(1000, "write a sample grid every N steps (0 = only at the end)")
    checkpoint_every: int = _f(1000, "write a checkpoint every N steps (0 = only at the end)")
    keep_checkpoints: int = _f(2, "model files kept under RUN_DIR/checkpoints")
    max_minutes: float = _f(0.0, "stop (with a checkpoint) after this many minutes (0 = no limit)")
    progress: bool = _f(True, "progress bar (plain log lines when stderr is not a terminal)")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
# May differ on --resume: they change where/how fast the run goes, not what it computes.
RESUMABLE = {"content", "style", "workers", "device", "precision", "compile", "run", "log_every", "sample_every",
             "checkpoint_every", "keep_checkpoints", "max_minutes", "progress", "steps", "max_bad_steps"}


def element_type(default: tuple) -> type:
    """The element type of a tuple setting (an empty default holds strings)."""
    return type(default[0]) if default else str


def _coerce(name: str, value: Any) -> Any:
    """Check/convert one value against the field's default type; one-line error otherwise."""
    default = TrainConfig.__dataclass_fields__[name]
    ref = default.default if default.default is not dataclasses.MISSING else default.default_factory()
    bad = UsageError(f"config key {name!r}: expected {type(ref).__name__}, got {value!r}")
    if isinstance(ref, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(ref, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if isinstance(ref, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(ref, str):
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(ref, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        kind = element_type(ref)
        try:
            return tuple(kind(v) for v in value)
        except (TypeError, ValueError):
            raise bad from None
    if isinstance(ref, dict):
        if not isinstance(value, dict):
            raise bad
        return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
    raise bad  # pragma: no cover


def normalise(values: dict, source: str) -> dict:
    """Keys with '-' or '_', unknown keys rejected, values type-checked."""
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise UsageError(f"{source}: unknown setting {key!r}")
        out[name] = _coerce(name, value)
    return out


def load_toml(path: str | Path) -> dict:
    """A TOML file as a dict, with one-line errors for missing or malformed files."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise DinstyleError(f"{path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
        raise DinstyleError(f"{path}: not a valid TOML file ({e})") from None


def read_toml(path: str | Path) -> dict:
    """A TOML config file as a normalised dict (one-line errors for missing or malformed files)."""
    return normalise(load_toml(path), str(path))


def _layer(base: dict, layer: dict) -> dict:
    """Apply one layer of settings; its shortcut keys expand unless the layer also sets the specific key."""
    out = {**base, **{k: v for k, v in layer.items() if k not in ("model", "loss_net", "style_encoder")}}
    if "model" in layer:
        out["model"] = {**base.get("model", {}), **layer["model"]}
    if layer.get("loss_net"):
        for k in ("content_loss_net", "style_loss_net"):
            if k not in layer:
                out[k] = layer["loss_net"]
    if layer.get("style_encoder"):
        out["model"] = {**out.get("model", {}), "style_encoder": layer["style_encoder"]}
    return out


def resolve(*layers: dict) -> TrainConfig:
    """Defaults, then each layer in order (later wins); shortcut keys are folded into the real ones."""
    values: dict = {}
    for layer in layers:
        values = _layer(values, normalise(layer, "settings"))
    cfg = TrainConfig(**values)
    validate(cfg)
    return cfg


def resume_overrides(saved: TrainConfig, *layers: dict) -> TrainConfig:
    """The run's saved config with the allowed overrides; changing anything else is an error."""
    current = to_dict(saved)
    proposed = to_dict(resolve(current, *layers))
    changed = sorted(k for k in proposed if proposed[k] != current[k] and k not in RESUMABLE)
    if changed:
        shown = ", ".join(f"{k} (run has {json.dumps(current[k])})" for k in changed)
        raise UsageError(f"--resume cannot change {shown}; start a new run (optionally with --init)")
    return resolve(current, *layers)


def validate(cfg: TrainConfig) -> None:
    """Reject impossible settings with one line each."""
    checks = [
        (cfg.size >= 16, "size must be >= 16"),
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (cfg.steps >= 1, "steps must be >= 1"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), "lr must be > 0"),
        (cfg.lr_decay >= 0, "lr_decay must be >= 0"),
        (len(cfg.crop_scale) == 2 and 1.0 <= cfg.crop_scale[0] <= cfg.crop_scale[1], "crop_scale must be (a, b) with 1 <= a <= b"),
        (cfg.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
        (0 <= cfg.content_tap <= 3, "content_tap must be 0..3"),
        (len(cfg.style_taps) >= 1 and all(0 <= t <= 3 for t in cfg.style_taps), "style_taps must be indices 0..3"),
        (min(cfg.content_weight, cfg.style_weight, cfg.identity_weight, cfg.tv_weight) >= 0, "loss weights must be >= 0"),
        (cfg.workers >= 0, "workers must be >= 0"),
        (cfg.log_every >= 1, "log_every must be >= 1"),
        (cfg.sample_every >= 0 and cfg.checkpoint_every >= 0, "sample_every/checkpoint_every must be >= 0"),
        (cfg.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
        (cfg.max_bad_steps >= 1, "max_bad_steps must be >= 1"),
        (cfg.max_minutes >= 0, "max_minutes must be >= 0"),
        (cfg.sample_count >= 0, "sample_count must be >= 0"),
        (cfg.max_pixels >= cfg.size * cfg.size, "max_pixels must be >= size*size"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def to_dict(cfg: TrainConfig) -> dict:
    """The resolved settings (shortcut keys dropped: they are folded into the real ones)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()
            if FIELDS[k].metadata.get("resolved", True)}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: JSON escapes are valid TOML escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(cfg: TrainConfig) -> str:
    """The resolved config as TOML: flat keys, then the [model] table."""
    d = to_dict(cfg)
    model = d.pop("model")
    lines = ["# dinstyle train: resolved configuration of this run", ""]
    lines += [f"{k} = {_toml_value(v)}" for k, v in d.items()]
    lines += ["", "[model]"] + [f"{k} = {_toml_value(v)}" for k, v in model.items()]
    return "\n".join(lines) + "\n"
