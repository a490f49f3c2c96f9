"""Settings of teacher-guided training (``dinstyle train --teacher magenta``): one dataclass, TOML in and out.

Torch-free, so the command line can list these settings without importing torch.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from .config import _toml_value, element_type, load_toml

TEACHERS = ("magenta", "init", "model")  # Magenta's int8 network; a frozen copy of the --init model; teacher_model


@dataclass
class TeacherConfig:
    teacher: str = "magenta"  # one of TEACHERS
    content: str = ""  # folder of photos (the fixed held-out split is left out)
    style: str = ""  # folder of style images (likewise)
    run: str = ""
    arch: str = "din-fast"
    model: dict = field(default_factory=dict)  # model config overrides
    init: str = ""  # start from this model file (a previous stage)
    teacher_model: str = ""  # teacher = "model": a model file or bundled name (e.g. "din-magenta")
    freeze: tuple[str, ...] = ()  # parameter-name prefixes kept fixed (as the paper's recipe's --freeze)
    size: int = 128  # training crop
    content_short_side: int = 192  # photos are kept in memory at this short side
    crop_scale: tuple[float, float] = (0.67, 1.5)  # crop side = size x U(a, b), clipped to the photo
    style_size: int = 256  # style images: centred square crop at this size (stored in the model)
    styles_per_step: int = 4
    contents_per_style: int = 4
    lr: float = 5e-4
    lr_final: float = 5e-5  # cosine decay from lr to lr_final over `steps`
    warmup: int = 200
    offset_lr_scale: float = 1.0  # lr multiplier of deformable DIN's offset predictors (they start at zero)
    steps: int = 20000
    grad_clip: float = 0.0  # clip the gradient norm (0 = off: Adam is scale-free, clipping a ~1e4 norm distorts it)
    feature_weight: float = 1.0
    stats_weight: float = 1.0
    pixel_weight: float = 1.0
    style_weight: float = 0.0
    identity_weight: float = 1.0
    identity_ssim_weight: float = 0.0  # 1 - SSIM of the alpha=0 reconstruction (L1 alone lets it blur)
    distill_weight: float = 0.0  # MSE of normalised features at the DIN levels student and teacher share by name
    distill_levels: tuple[str, ...] = ("up2", "out")  # (teacher = "model" only)
    pixel_scale: int = 4  # the pixel term compares after this x average pooling (1 = full size)
    mid_alpha_weight: float = 0.0  # at a random alpha, the teacher terms against alpha x teacher + (1 - alpha) x photo
    feature_taps: tuple[int, ...] = (0, 1, 2)  # loss-net taps (0 = relu1_1): relu4_1 doubles the loss cost
    stats_taps: tuple[int, ...] = (0, 1, 2)
    bf16: bool = False  # bf16 autocast: measured 100x SLOWER than fp32 for convs on this CPU (torch 2.13)
    channels_last: bool = True  # the loss net runs ~1.4x faster in channels_last on the CPU
    threads: int = 0  # torch intra-op threads (0 = torch's default)
    seed: int = 0
    max_pixels: int = 50_000_000
    max_minutes: float = 0.0
    log_every: int = 20
    sample_every: int = 500
    checkpoint_every: int = 200


FIELDS = {f.name: f for f in dataclasses.fields(TeacherConfig)}
RESUMABLE = {"content", "style", "run", "threads", "max_minutes", "log_every", "sample_every",
             "checkpoint_every", "steps", "bf16", "channels_last"}


def make_config(values: dict) -> TeacherConfig:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise UsageError(f"unknown teacher-training settings: {', '.join(sorted(unknown))}")
    out = {}
    for k, v in values.items():
        default = TeacherConfig.__dataclass_fields__[k]
        ref = default.default if default.default is not dataclasses.MISSING else default.default_factory()
        bad = UsageError(f"setting {k!r}: expected {type(ref).__name__}, got {v!r}")
        if isinstance(ref, bool) != isinstance(v, bool) or (isinstance(ref, str) and not isinstance(v, str)):
            raise bad
        try:
            if isinstance(ref, tuple):
                v = tuple(element_type(ref)(x) for x in v)
            elif isinstance(ref, (int, float)) and not isinstance(ref, bool):
                if isinstance(ref, int) and v != int(v):
                    raise bad
                v = type(ref)(v)
            elif isinstance(ref, dict) and not isinstance(v, dict):
                raise bad
        except (TypeError, ValueError):
            raise bad from None
        out[k] = v
    cfg = TeacherConfig(**out)
    checks = [(cfg.teacher in TEACHERS, f"teacher must be one of {', '.join(TEACHERS)}"),
              (cfg.teacher != "init" or bool(cfg.init), "teacher = init needs init = MODEL_FILE"),
              (cfg.teacher != "model" or bool(cfg.teacher_model), "teacher = model needs teacher_model = MODEL"),
              (cfg.teacher == "model" or not cfg.distill_weight, "distill_weight needs teacher = model"),
              (cfg.pixel_scale >= 1, "pixel_scale must be >= 1"),
              (cfg.size >= 32 and cfg.size % 8 == 0, "size must be a multiple of 8, >= 32"),
              (cfg.styles_per_step >= 1 and cfg.contents_per_style >= 1, "batch shape must be >= 1"),
              (cfg.lr > 0 and cfg.lr_final >= 0 and math.isfinite(cfg.lr), "lr must be > 0"),
              (all(math.isfinite(w) and w >= 0 for w in (cfg.feature_weight, cfg.stats_weight, cfg.pixel_weight,
                                                          cfg.style_weight, cfg.identity_weight,
                                                          cfg.identity_ssim_weight, cfg.mid_alpha_weight,
                                                          cfg.distill_weight)),
               "loss weights must be finite and >= 0"),
              (all(0 <= t <= 3 for t in (*cfg.feature_taps, *cfg.stats_taps)), "taps must be indices 0..3"),
              (cfg.steps >= 1, "steps must be >= 1"),
              (cfg.content_short_side >= cfg.size, "content_short_side must be >= size")]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    return cfg


def to_dict(cfg: TeacherConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def read_toml(path: str | Path) -> dict:
    """A settings file: keys with '-' or '_' (checked against TeacherConfig by ``make_config``)."""
    return {k.replace("-", "_"): v for k, v in load_toml(path).items()}


def to_toml(cfg: TeacherConfig) -> str:
    d = to_dict(cfg)
    model = d.pop("model")
    lines = ["# dinstyle train --teacher: resolved configuration of this run", ""]
    lines += [f"{k} = {_toml_value(v)}" for k, v in d.items()]
    lines += ["", "[model]"] + [f"{k} = {_toml_value(v)}" for k, v in model.items()]
    return "\n".join(lines) + "\n"
