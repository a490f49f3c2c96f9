"""Where a run may write, decided before it writes anything. Torch-free: shared by every command that
writes files (stylize, video, encode-style) and by ``dinstyle.lite``.

The rule, for all the outputs of one run at once:

* no output may be an input of the run (content images, styles, masks, stroke maps, the model, style
  codes), compared after resolving links, and by device and inode for files that exist (hard links);
* no two items may share an output (neither is written);
* an existing output is replaced only with ``overwrite``, and never when it is a folder;
* stdout ('-') is never a terminal: image bytes there garble it, and a redirect was surely forgotten.

An item that breaks it gets a one-line reason and is not run; the others go ahead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Sequence, Union

PathLike = Union[str, os.PathLike]
STDOUT = "-"


class Refusal(str):
    """Why an output is refused (one line); ``kind`` is 'input' (it is an input of the run), 'shared'
    (another item's output too), 'folder', 'exists' (without overwrite) or 'terminal' (stdout is one)."""

    def __new__(cls, text: str, kind: str):
        obj = super().__new__(cls, text)
        obj.kind = kind
        return obj


def file_keys(path: PathLike) -> set[tuple]:
    """What makes two paths the same file: the resolved path (symlinks followed) and, for a file that
    exists, its device and inode (hard links)."""
    p = Path(path)
    keys: set[tuple] = {("path", os.path.normcase(str(p.resolve())))}
    try:
        st = p.stat()
        keys.add(("inode", st.st_dev, st.st_ino))
    except OSError:
        pass
    return keys


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (ValueError, OSError):  # closed or detached: not a terminal we could garble
        return False


def plan_outputs(items: Sequence[tuple[str, PathLike | None, PathLike | None]], inputs: Iterable[PathLike | None],
                 overwrite: bool) -> list[Refusal | None]:
    """Check every planned output of a run; returns, per item, the reason it is refused, or None.

    ``items``: (label, the item's own input or None, its output or None (already failed) or '-' (stdout)).
    ``inputs``: every other input file of the run (styles, masks, model, ...); None entries are skipped.
    """
    owner: dict[tuple, str] = {}  # key of an input file -> how to name it
    for path in [p for _, p, _ in items] + list(inputs):
        if path is not None and str(path) != STDOUT:
            for key in file_keys(path):
                owner.setdefault(key, str(path))
    reasons: list[Refusal | None] = [None] * len(items)
    claims: dict[tuple, list[int]] = {}
    out_keys: list[set[tuple]] = []
    for i, (label, own, out) in enumerate(items):
        if out is not None and str(out) == STDOUT and stdout_is_terminal():
            reasons[i] = Refusal(f"{label}: will not write image data to the terminal: redirect stdout "
                                 "(> out.png) or give -o FILE", "terminal")
        keys = set() if out is None or str(out) == STDOUT else file_keys(out)
        out_keys.append(keys)
        if not keys:
            continue
        hit = next((owner[k] for k in sorted(keys) if k in owner), None)
        if hit is not None:
            mine = own is not None and keys & file_keys(own)
            reasons[i] = Refusal(f"{label}: the output {out} would overwrite the input (choose another -o)" if mine
                                 else f"{label}: the output {out} would overwrite {hit}, an input of this run "
                                 "(choose another -o)", "input")
            continue
        for k in keys:
            claims.setdefault(k, []).append(i)
    for i, (label, _, out) in enumerate(items):
        if reasons[i] is not None or not out_keys[i]:
            continue
        others = sorted({j for k in out_keys[i] for j in claims.get(k, ()) if j != i})
        if others:
            names = ", ".join(items[j][0] for j in others)
            reasons[i] = Refusal(f"{label}: output {out} is also the output of {names}; neither is written", "shared")
        elif Path(out).is_dir():
            reasons[i] = Refusal(f"{out}: is a folder (choose another -o)", "folder")
        elif os.path.lexists(out) and not overwrite:
            reasons[i] = Refusal(f"{out}: already exists (use --overwrite to replace it)", "exists")
    return reasons
