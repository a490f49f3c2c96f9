"""The options of a dataset job, checked once here (the CLI and the Python API only translate into them).

Two kinds: the *recipe* decides what every output looks like and is recorded in the job file, so a rerun
with another recipe into the same folder is refused instead of mixing two datasets; the *run* settings
(engine, workers, threads, batch size, device) change only the speed: both engines and any number of
workers give the same outputs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..defaults import DEFAULT_MODEL
from ..errors import UsageError

ENGINES = ("local", "ray")

# Geirhos et al. (ICLR 2019) made Stylized-ImageNet with AdaIN at full strength, one randomly chosen
# painting per photo, every photo at its own size (so the ImageNet labels and any box stay valid).
PRESETS = {"stylized-imagenet": dict(styles_per_image=1, alpha=(1.0, 1.0), preserve_color=0.0, size=None,
                                     max_size=None)}


@dataclass(frozen=True)
class DatasetOptions:
    # recipe
    model: str = DEFAULT_MODEL
    seed: int = 0
    styles_per_image: int = 1
    alpha: tuple[float, float] = (1.0, 1.0)  # sampled uniformly per output; (a, a) is a fixed alpha
    preserve_color: float = 0.0  # probability that an output keeps the photo's colours
    size: int | None = None  # resize the long side to this
    max_size: int | None = None  # shrink only, long side at most this
    format: str | None = None  # output extension (default: the photo's own)
    quality: int | None = None  # JPEG/WebP quality (default 95)
    # run
    engine: str = "local"
    workers: int | None = None  # default: one per core (local), two actors (ray, local cluster)
    threads: int | None = None  # torch threads per worker (default 1: see run._run_settings)
    batch_size: int = 8
    device: str = "cpu"
    ray_address: str | None = None
    overwrite: bool = False  # start again: replace every output of an earlier run in the output folder
    retry_failed: bool = False  # a rerun tries the photos that failed before (default: they stay failed)
    progress: bool = True

    def recipe(self) -> dict:
        """What decides the outputs (recorded in the job file; compared on a rerun)."""
        keys = ("seed", "styles_per_image", "alpha", "preserve_color", "size", "max_size", "format", "quality")
        d = asdict(self)
        return {k: list(d[k]) if k == "alpha" else d[k] for k in keys}


def parse_alpha(text: str) -> tuple[float, float]:
    """``0.8`` or a range ``0.5:1`` (sampled uniformly per output), each in [0, 1]."""
    parts = str(text).split(":")
    try:
        lo, hi = (float(parts[0]), float(parts[-1])) if len(parts) <= 2 else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    if not (0.0 <= lo <= hi <= 1.0):
        raise UsageError(f"--alpha {text!r}: give a number in [0, 1] or a range LO:HI within it (LO <= HI)")
    return lo, hi


def with_preset(options: DatasetOptions, preset: str | None, explicit: dict) -> DatasetOptions:
    """``preset``'s values, then the options the user gave explicitly on top (they win)."""
    if preset is None:
        return replace(options, **explicit)
    if preset not in PRESETS:
        raise UsageError(f"--preset {preset!r}: known presets are {', '.join(PRESETS)}")
    return replace(options, **{**PRESETS[preset], **explicit})


def check(o: DatasetOptions) -> DatasetOptions:
    """Every option's rule, as one-line usage errors."""
    ints = {"--styles-per-image": (o.styles_per_image, 1), "--batch-size": (o.batch_size, 1),
            "--size": (o.size, 16), "--max-size": (o.max_size, 16), "--workers": (o.workers, 1),
            "--threads": (o.threads, 1)}
    for flag, (value, least) in ints.items():
        if value is not None and (not isinstance(value, int) or value < least):
            raise UsageError(f"{flag} must be a whole number >= {least}, got {value}")
    if o.size is not None and o.max_size is not None:
        raise UsageError("--size and --max-size exclude each other")
    lo, hi = o.alpha
    if not (0.0 <= lo <= hi <= 1.0):
        raise UsageError(f"--alpha must lie in [0, 1] with LO <= HI, got {lo}:{hi}")
    if not (isinstance(o.preserve_color, (int, float)) and 0.0 <= o.preserve_color <= 1.0):
        raise UsageError(f"--preserve-color is a probability in [0, 1], got {o.preserve_color}")
    if o.quality is not None and not 1 <= o.quality <= 100:
        raise UsageError(f"--quality must be 1..100, got {o.quality}")
    if o.engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {o.engine!r}")
    if o.ray_address and o.engine != "ray":
        raise UsageError("--ray-address needs --engine ray")
    if o.format is not None:
        check_format(o.format)
    return o


def check_format(fmt: str) -> None:
    """``--format`` is a bare extension (png, .jpg, ...) that Pillow can write, never a path."""
    from pathlib import Path

    from ..errors import DinstyleError
    from ..io.images import output_format

    bare = fmt.lower().lstrip(".")
    try:
        if not bare.isalnum() or len(bare) > 10:
            raise DinstyleError(bare)
        output_format(Path("x." + bare))
    except DinstyleError:
        raise UsageError(f"--format {fmt!r}: give an extension Pillow can write (png, jpg, webp, tif, ...)") from None
