"""The fixed held-out split of the training data: chosen by a hash of the file name, not by a seed.

A file's name alone decides whether it is held out, so the split is the same on every machine, for
every run and every stage of a model, and adding files to a folder never moves an old file across.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

HELD_OUT_PERCENT = 12


def is_held_out(path: str | Path, percent: int = HELD_OUT_PERCENT) -> bool:
    """True for about ``percent`` % of file names (sha256 of the name, not of the path or contents)."""
    digest = hashlib.sha256(Path(path).name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def split_files(files: Iterable[Path], percent: int = HELD_OUT_PERCENT) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files), each in the input order."""
    train, held = [], []
    for f in files:
        (held if is_held_out(f, percent) else train).append(f)
    return train, held
