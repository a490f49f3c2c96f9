"""Atomic writes: every file dinstyle writes appears whole or not at all (a temporary sibling, renamed), and
no temporary file outlives an interrupt, SIGTERM included (``sigterm_as_interrupt``)."""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
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
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
    except BaseException:  # an interrupt (Ctrl-C, SIGTERM) here too must leave no hidden file behind
        os.unlink(tmp)
        raise
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


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so the cleanup of every temporary file (the
    ``finally`` of the writers here, a half-written video's) runs on either. The one place that rule lives:
    the ``dinstyle`` and ``python -m dinstyle.lite`` mains run every command inside it. Left alone off the
    main thread (signals only reach it) and where the host installed its own handler; commands that stop
    gracefully (train, serve) install theirs while they run and put this one back."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
