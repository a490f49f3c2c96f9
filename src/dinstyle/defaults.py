"""Project-wide defaults and the rules of the controls that the torch-free runtime (``dinstyle.lite``) shares,
in one torch-free place (the CLI reads them before importing torch)."""
import math

from .errors import UsageError

DEFAULT_MODEL = "din-magenta"  # the architecture whose trained weights ship in the package (also: din-fast)
DEFAULT_STYLE_SIZE = 512  # style long side for models that do not store their own (trained ones do)


def model_style_size(model) -> int:
    """The style long side a model encodes at by default (``StyleTransferNet.style_size``: the size it was
    trained with, else DEFAULT_STYLE_SIZE). The one rule for the PyTorch commands and ONNX export."""
    return int(model.style_size)


# Stroke scale (runtime/scale.py; the same rule in dinstyle.lite): stroke size 1 keeps the look a model gives a photo
# of REFERENCE_SIZE px on its long side, whatever the photo's size; weights may carry their own reference size.
REFERENCE_SIZE = 512


def model_reference_size(model) -> int:
    """A model's reference long side: its weights' own (``model.pretrained.reference_size``), else REFERENCE_SIZE."""
    return int(model.pretrained.reference_size or REFERENCE_SIZE)


def scale_for(height: int, width: int, stroke_size: float = 1.0, reference: int = REFERENCE_SIZE) -> float:
    """How much smaller than the photo the network runs: ``stroke_size`` x the photo's size over the reference
    (never below 1 for that part: a small photo is not enlarged to look like a large one)."""
    return float(stroke_size) * max(1.0, max(height, width) / reference)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The size the network runs at for ``scale``."""
    return max(1, round(height / scale)), max(1, round(width / scale))


STROKE_SIZES = (0.25, 4.0)  # 1/4..4: the network then runs at 4x to 1/4 of the reference size


def check_range(value, low: float, high: float, what: str) -> float:
    """The one check of a bounded control: a finite number from ``low`` to ``high`` (nan and text refused),
    one line naming it. Alpha, stroke size, temporal strength and the scene-cut threshold all use it."""
    try:
        ok = math.isfinite(value) and low <= value <= high
    except TypeError:
        ok = False
    if not ok:
        raise UsageError(f"{what} must be a number from {low:g} to {high:g}, got {value}")
    return float(value)


def check_alpha(alpha) -> float:
    """Alpha's rule (``StyleOptions``, ``RunRequest`` and ``dinstyle.lite``)."""
    return check_range(alpha, 0.0, 1.0, "alpha")


def check_stroke_size(value, what: str = "stroke size") -> float:
    """The stroke size's rule (API, CLI, video and ``dinstyle.lite``)."""
    return check_range(value, *STROKE_SIZES, what)


# Dither (runtime/runner.py; the same noise in dinstyle.lite): a fixed Gaussian noise of DITHER on every pass's
# input. A flat sky or a flat graphic gives the network nothing to paint from, so it painted what little it
# found (JPEG blocks, banding, ringing from edges) as grids and streaks; with the noise it lays the style's
# texture evenly. On 6 flat graphics + 7 flat-sky photos x 6 styles at 512 px (din-magenta), the share of
# flat-region texture power in spectral peaks fell from 0.25 to 0.04 at 0.02, and texture reached 0.88 of the
# flat pixels instead of 0.39 (benchmarks/pilots/flat_dither.py). Fixed (seed 0, by size), so video frames get
# the same noise and do not flicker, and tiles the same as the whole image.
DITHER = 0.02


def dither_noise(height: int, width: int, sigma: float = DITHER):
    """The dither of a (3, height, width) pass input: float32 numpy, the same for torch and dinstyle.lite."""
    import numpy as np  # here: the CLI imports this module before anything heavy

    return sigma * np.random.default_rng(0).standard_normal((3, height, width), dtype=np.float32)
