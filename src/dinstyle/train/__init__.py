"""Training: ``dinstyle train`` (one loop for the paper's losses and teacher-guided training; resumable, DDP)
and ``dinstyle check-data``. See docs/TRAINING.md.

``train``/``TrainResult`` are imported lazily so that reading configs (and ``dinstyle --help``) does
not pay for importing torch.
"""
from .config import TrainConfig, read_toml, resolve, to_toml


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TrainConfig", "TrainResult", "read_toml", "resolve", "to_toml", "train"]
