"""Atomic writes: every file dinstyle writes appears whole or not at all (a temporary sibling, renamed)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


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
