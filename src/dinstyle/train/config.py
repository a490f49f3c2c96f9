"""Training configuration: one dataclass for every objective, TOML in and out, CLI overrides on top.

Precedence: built-in defaults < the teacher recipe's defaults (when ``teacher`` is set) < ``--config FILE.toml``
< command-line flags. On ``--resume`` the run's own ``config.toml`` replaces the defaults and only settings that
do not change the computation may be overridden (so the resumed run is the run that was started).

Each field says which objective uses it (``used``: "all", "paper" or "teacher"); setting one the run's
objective does not use is an error, and a run's ``config.toml`` lists only the settings its objective uses.
Torch-free, so the command line can list the settings without importing torch.
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
TEACHERS = ("magenta", "init", "model")  # Magenta's int8 network; a frozen copy of the init model; teacher_model
SCHEDULES = ("inverse", "cosine")
SHORTCUTS = ("loss_net", "style_encoder", "style_size")  # keys that set other keys (not in a resolved config)


def _f(default: Any, help: str, used: str = "all", **kw: Any) -> Any:
    """A dataclass field with its command-line help text (the CLI is generated from these), the objective that
    uses it and, as ``teacher=``, a different default for teacher-guided runs."""
    meta = {"help": help, "used": used, **kw}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # --- objective
    teacher: str = _f("", "teacher-guided objective: magenta (Magenta's int8 network), init (a frozen copy of the "
                          "--init model), model (--teacher-model); empty: the paper's losses", choices=TEACHERS)
    teacher_model: str = _f("", "teacher = model: a model file or bundled name (e.g. din-magenta)", "teacher")
    # --- data
    content: str = _f("", "folder of content images (searched recursively)")
    style: str = _f("", "folder of style images (searched recursively)")
    size: int = _f(256, "square training crop size in pixels", teacher=128)
    crop_scale: tuple[float, float] = _f((1.0, 2.0), "crop side: the short side resized to size x U(a, b) (paper), "
                                                     "a square of size x U(a, b) px of the photo (teacher)",
                                         teacher=(0.67, 1.5))
    flip: bool = _f(True, "random horizontal flips")
    max_pixels: int = _f(100_000_000, "images with more pixels are skipped (decompression-bomb guard)",
                         teacher=50_000_000)
    sample_count: int = _f(4, "fixed held-out content/style pairs shown in the sample grids")
    batch_size: int = _f(8, "images per step and per process", "paper")
    workers: int = _f(4, "DataLoader worker processes (0 = load in the main process)", "paper")
    content_short_side: int = _f(192, "photos are kept in memory at this short side", "teacher")
    styles_per_step: int = _f(4, "styles per step (each style's code is computed once)", "teacher")
    contents_per_style: int = _f(4, "photos per style and step", "teacher")
    # --- model
    arch: str = _f("", "architecture (default din-mobilenet-vgg, or the one of --init)", teacher="din-fast")
    model: dict = _f({}, "model config overrides (TOML [model] table)", cli=False)
    style_encoder: str = _f("", "style encoder backbone (sets model.style_encoder)")
    style_size: int = _f(0, "style images are encoded at this size (sets model.style_size)")
    init: str = _f("", "start from the weights of this model file (its arch and model config too)")
    freeze: tuple[str, ...] = _f((), "parameter-name prefixes kept fixed, e.g. contract,convs,style_encoder.predictor "
                                     "(fine-tuning a converted or trained model)")
    # --- the paper's losses
    loss_net: str = _f("", "loss network for both content and style terms", "paper")
    content_loss_net: str = _f("vgg19", "loss network of the content term", "paper")
    style_loss_net: str = _f("vgg19", "loss network of the style term", "paper")
    loss_net_seed: int = _f(0, "seed of random-* loss networks", "paper")
    content_tap: int = _f(3, "index into the loss net's 4 style taps used by the content term (3 = deepest)", "paper")
    style_taps: tuple[int, ...] = _f((0, 1, 2, 3), "loss-net taps (0 = shallowest) used by the style term", "paper")
    normalize_loss_features: bool = _f(True, "divide loss-net features by fixed per-tap scales (unit-RMS, like "
                                             "AdaIN's normalised VGG) so weights mean the same for every loss net",
                                       "paper")
    content_weight: float = _f(1.0, "weight of the content term", "paper")
    tv_weight: float = _f(0.0, "weight of the total-variation term", "paper")
    # --- both objectives
    style_weight: float = _f(10.0, "weight of the style term (channel mean/std of the output vs the style image)",
                             teacher=0.0)
    identity_weight: float = _f(1.0, "weight of the L1 term making alpha=0 reconstruct the content")
    # --- teacher-guided losses
    feature_weight: float = _f(1.0, "MSE of normalised loss-net features, student vs teacher", "teacher")
    stats_weight: float = _f(1.0, "MSE of their channel means and stds (texture statistics)", "teacher")
    pixel_weight: float = _f(1.0, "L1 of pixels, student vs teacher (after pixel_scale x pooling)", "teacher")
    pixel_scale: int = _f(4, "the pixel term compares after this x average pooling (1 = full size)", "teacher")
    identity_ssim_weight: float = _f(0.0, "1 - SSIM of the alpha=0 reconstruction (L1 alone lets it blur)", "teacher")
    distill_weight: float = _f(0.0, "teacher = model: MSE of normalised features at the DIN levels both share",
                               "teacher")
    distill_levels: tuple[str, ...] = _f(("up2", "out"), "DIN levels of the distill term", "teacher")
    mid_alpha_weight: float = _f(0.0, "at a random alpha, the teacher terms against alpha x teacher + "
                                      "(1 - alpha) x photo", "teacher")
    feature_taps: tuple[int, ...] = _f((0, 1, 2), "loss-net taps of the feature term (0 = relu1_1)", "teacher")
    stats_taps: tuple[int, ...] = _f((0, 1, 2), "loss-net taps of the stats and style terms", "teacher")
    # --- optimisation
    steps: int = _f(160_000, "total training steps (optimizer iterations)", teacher=20_000)
    lr: float = _f(1e-4, "Adam learning rate (after the warm-up)", teacher=5e-4)
    lr_schedule: str = _f("inverse", "inverse: lr / (1 + lr_decay x step); cosine: down to lr_final at the last "
                                     "step", teacher="cosine", choices=SCHEDULES)
    lr_decay: float = _f(5e-5, "the inverse schedule's decay")
    lr_final: float = _f(5e-5, "the cosine schedule's last learning rate")
    warmup: int = _f(0, "steps of linear learning-rate warm-up", teacher=200)
    offset_lr_scale: float = _f(1.0, "learning-rate multiplier of deformable DIN's offset predictors")
    grad_clip: float = _f(0.0, "clip the gradient norm to this (0 = off)")
    max_bad_steps: int = _f(20, "stop after this many consecutive non-finite steps")
    seed: int = _f(0, "random seed (model init, data order, crops)")
    # --- runtime
    device: str = _f("auto", "auto|cpu|cuda|cuda:N|mps")
    precision: str = _f("auto", "auto (bf16 on CUDA, else fp32) | fp32 | bf16", choices=PRECISIONS)
    compile: bool = _f(False, "torch.compile the training step (CUDA)")
    threads: int = _f(0, "torch intra-op threads (0 = torch's default)")
    # --- output
    run: str = _f("", "run folder: config, log, checkpoints, samples, model")
    log_every: int = _f(50, "write a log.jsonl entry every N steps", teacher=20)
    sample_every: int = _f(1000, "write a sample grid every N steps (0 = only at the end)", teacher=500)
    checkpoint_every: int = _f(1000, "write a checkpoint every N steps (0 = only at the end)", teacher=200)
    keep_checkpoints: int = _f(2, "model files kept under RUN_DIR/checkpoints")
    max_minutes: float = _f(0.0, "stop (with a checkpoint) after this many minutes (0 = no limit)")
    progress: bool = _f(True, "progress bar (plain log lines when stderr is not a terminal)")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
TEACHER_DEFAULTS = {n: f.metadata["teacher"] for n, f in FIELDS.items() if "teacher" in f.metadata}
# May differ on --resume: they change where/how fast the run goes, not what it computes.
RESUMABLE = {"content", "style", "workers", "device", "precision", "compile", "threads", "run", "log_every",
             "sample_every", "checkpoint_every", "keep_checkpoints", "max_minutes", "progress", "steps",
             "max_bad_steps"}
# Keys of older files, accepted where they say what the loop does anyway.
RETIRED = {"bf16": {True: {"precision": "bf16"}, False: {}},
           "channels_last": {True: {}}}  # the teacher's loss network always runs channels_last


def objective(cfg: TrainConfig) -> str:
    """'teacher' (teacher-guided) or 'paper' (the paper's losses)."""
    return "teacher" if cfg.teacher else "paper"


def used(name: str, objective_name: str) -> bool:
    return FIELDS[name].metadata["used"] in ("all", objective_name)


def element_type(default: tuple) -> type:
    """The element type of a tuple setting (an empty default holds strings)."""
    return type(default[0]) if default else str


def _coerce(name: str, value: Any) -> Any:
    """Check/convert one value against the field's default type; one-line error otherwise."""
    default = FIELDS[name]
    ref = default.default if default.default is not dataclasses.MISSING else default.default_factory()
    bad = UsageError(f"config key {name!r}: expected {type(ref).__name__}, got {value!r}")
    if isinstance(ref, bool) != isinstance(value, bool):
        raise bad
    if isinstance(ref, (bool, str, dict)):
        if not isinstance(value, type(ref)):
            raise bad
        return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()} if isinstance(ref, dict) else value
    if isinstance(ref, int):
        if not isinstance(value, int):
            raise bad
        return value
    if isinstance(ref, float):
        if not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(ref, tuple) and isinstance(value, (list, tuple)):
        try:
            return tuple(element_type(ref)(v) for v in value)
        except (TypeError, ValueError):
            raise bad from None
    raise bad


def normalise(values: dict, source: str) -> dict:
    """Keys with '-' or '_', unknown keys rejected, retired keys translated, values type-checked."""
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name in RETIRED:
            if not isinstance(value, bool) or value not in RETIRED[name]:
                raise UsageError(f"{source}: setting {key!r} = {value!r} is retired (the one training loop has "
                                 "no such switch); remove it")
            out.update(RETIRED[name][value])
            continue
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
    out = {**base, **{k: v for k, v in layer.items() if k not in ("model",) + SHORTCUTS}}
    if "model" in layer:
        out["model"] = {**base.get("model", {}), **layer["model"]}
    if layer.get("loss_net"):
        for k in ("content_loss_net", "style_loss_net"):
            if k not in layer:
                out[k] = layer["loss_net"]
        out["loss_net"] = layer["loss_net"]  # only to say, below, that the layer set a paper setting
    for key in ("style_encoder", "style_size"):
        if layer.get(key) and key not in layer.get("model", {}):
            out["model"] = {**out.get("model", {}), key: layer[key]}
    return out


def resolve(*layers: dict) -> TrainConfig:
    """Defaults, then each layer in order (later wins); shortcut keys are folded into the real ones. A setting the
    run's objective does not use is an error (``to_dict`` gives a config as a layer)."""
    values: dict = {}
    for layer in layers:
        values = _layer(values, normalise(layer, "settings"))
    given = {k: v for k, v in values.items() if k != "model"}
    values.pop("loss_net", None)
    if values.get("teacher"):
        values = {**TEACHER_DEFAULTS, **values}
    cfg = TrainConfig(**values)
    name = objective(cfg)
    unused = sorted(k for k in given if not used(k, name))
    if unused:
        flags = ", ".join(f"{k} (--{k.replace('_', '-')})" for k in unused)
        raise UsageError(f"{flags}: not used by {_describe(cfg)}" +
                         ("" if cfg.teacher else "; set teacher = magenta, init or model for teacher-guided training"))
    validate(cfg)
    return cfg


def _describe(cfg: TrainConfig) -> str:
    return f"teacher-guided training (teacher = {cfg.teacher})" if cfg.teacher else "the paper's losses"


def resume_overrides(saved: TrainConfig, *layers: dict) -> TrainConfig:
    """The run's saved config with the allowed overrides; changing anything else is an error."""
    current = to_dict(saved)
    teacher = [normalise(layer, "settings").get("teacher", saved.teacher) for layer in layers]
    if any(t != saved.teacher for t in teacher):
        raise UsageError(f"--resume cannot change teacher (run has {json.dumps(saved.teacher)}); "
                         "start a new run (optionally with --init)")
    proposed = to_dict(resolve(current, *layers))
    changed = sorted(k for k in proposed if proposed[k] != current.get(k) and k not in RESUMABLE)
    if changed:
        shown = ", ".join(f"{k} (run has {json.dumps(current.get(k))})" for k in changed)
        raise UsageError(f"--resume cannot change {shown}; start a new run (optionally with --init)")
    return resolve(current, *layers)


def _checks(cfg: TrainConfig) -> list[tuple[bool, str]]:
    """Every objective's rules: (holds, the message when it does not)."""
    weights = [cfg.content_weight, cfg.style_weight, cfg.identity_weight, cfg.tv_weight, cfg.feature_weight,
               cfg.stats_weight, cfg.pixel_weight, cfg.identity_ssim_weight, cfg.distill_weight, cfg.mid_alpha_weight]
    return [
        (cfg.teacher in ("",) + TEACHERS, f"teacher must be one of {', '.join(TEACHERS)} (or empty)"),
        (cfg.steps >= 1, "steps must be >= 1"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), "lr must be > 0"),
        (cfg.lr_schedule in SCHEDULES, f"lr_schedule must be one of {', '.join(SCHEDULES)}"),
        (cfg.lr_decay >= 0 and cfg.lr_final >= 0 and cfg.warmup >= 0, "lr_decay, lr_final and warmup must be >= 0"),
        (cfg.offset_lr_scale > 0 and cfg.grad_clip >= 0, "offset_lr_scale must be > 0 and grad_clip >= 0"),
        (all(math.isfinite(w) and w >= 0 for w in weights), "loss weights must be finite and >= 0"),
        (cfg.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
        (cfg.threads >= 0 and cfg.sample_count >= 0, "threads and sample_count must be >= 0"),
        (cfg.log_every >= 1, "log_every must be >= 1"),
        (cfg.sample_every >= 0 and cfg.checkpoint_every >= 0, "sample_every/checkpoint_every must be >= 0"),
        (cfg.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
        (cfg.max_bad_steps >= 1, "max_bad_steps must be >= 1"),
        (cfg.max_minutes >= 0, "max_minutes must be >= 0"),
        (cfg.max_pixels >= cfg.size * cfg.size, "max_pixels must be >= size*size"),
        (len(cfg.crop_scale) == 2 and 0 < cfg.crop_scale[0] <= cfg.crop_scale[1], "crop_scale must be (a, b), 0 < a <= b"),
    ]


def _paper_checks(cfg: TrainConfig) -> list[tuple[bool, str]]:
    return [
        (cfg.size >= 16, "size must be >= 16"),
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (cfg.workers >= 0, "workers must be >= 0"),
        (cfg.crop_scale[0] >= 1.0, "crop_scale must be (a, b) with 1 <= a <= b (the paper's crops never upscale)"),
        (0 <= cfg.content_tap <= 3, "content_tap must be 0..3"),
        (len(cfg.style_taps) >= 1 and all(0 <= t <= 3 for t in cfg.style_taps), "style_taps must be indices 0..3"),
    ]


def _teacher_checks(cfg: TrainConfig) -> list[tuple[bool, str]]:
    return [
        (cfg.teacher != "init" or bool(cfg.init), "teacher = init needs init = MODEL_FILE"),
        (cfg.teacher != "model" or bool(cfg.teacher_model), "teacher = model needs teacher_model = MODEL"),
        (cfg.teacher == "model" or not cfg.distill_weight, "distill_weight needs teacher = model"),
        (cfg.pixel_scale >= 1, "pixel_scale must be >= 1"),
        (cfg.size >= 32 and cfg.size % 8 == 0, "size must be a multiple of 8, >= 32"),
        (cfg.styles_per_step >= 1 and cfg.contents_per_style >= 1, "styles_per_step and contents_per_style must be >= 1"),
        (all(0 <= t <= 3 for t in (*cfg.feature_taps, *cfg.stats_taps)), "feature_taps and stats_taps must be 0..3"),
        (cfg.content_short_side >= cfg.size, "content_short_side must be >= size"),
    ]


def validate(cfg: TrainConfig) -> None:
    """Reject impossible settings with one line each."""
    for ok, message in _checks(cfg) + (_teacher_checks(cfg) if cfg.teacher else _paper_checks(cfg)):
        if not ok:
            raise UsageError(message)


def to_dict(cfg: TrainConfig) -> dict:
    """The resolved settings the run's objective uses (shortcut keys dropped: they are folded into the real ones)."""
    name = objective(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()
            if k not in SHORTCUTS and used(k, name)}


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
