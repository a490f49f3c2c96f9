"""Turning command-line inputs into work items: files, folders (recursive), globs and '-' (stdin), each
with its output path, or with the reason it cannot be done.

Output naming (also in docs/USAGE.md):
  * no ``-o``: next to the input, ``NAME_stylized.EXT`` (stdin goes to stdout);
  * ``-o FILE``: exactly one input; the format comes from FILE's extension; ``-o -`` is stdout;
  * ``-o DIR`` (an existing folder, a path ending in '/', a path without extension, or any run with
    several inputs): ``DIR/<path relative to the folder given>/NAME.EXT``.
EXT is the input's own extension when it can be written, else ``.png``; ``--format`` overrides it.
Folder and glob scans leave out our own earlier outputs (``NAME_stylized.*`` beside a ``NAME.*``), so a
second run does not stylize the first one's results. Which outputs may be written is decided for the
whole run at once, before anything is written (``dinstyle.io.outputs``).
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DinstyleError, UsageError
from ..io.images import image_extensions, output_format
from ..io.outputs import plan_outputs

GLOB_CHARS = set("*?[")
SUFFIX = "_stylized"  # default output names: NAME_stylized.EXT


@dataclass
class Item:
    """One content image to stylize."""

    label: str  # how the user will recognise it in messages
    path: Path | None  # None: read from stdin
    rel: Path  # relative path kept under ``-o DIR``
    output: Path | str | None = None  # '-': stdout
    error: str | None = None
    usage: bool = False  # the error is a usage error: a named input that does not exist (exit 2)


def _earlier_outputs(paths: list[Path]) -> set[Path]:
    """Files among ``paths`` that are our default output of another of them (NAME_stylized.* beside NAME.*)."""
    stems = {(p.parent, p.stem) for p in paths}
    return {p for p in paths if p.stem.endswith(SUFFIX) and (p.parent, p.stem[: -len(SUFFIX)]) in stems}


def _folder_items(folder: Path, exclude: Path | None) -> list[Item]:
    exts = image_extensions()
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.suffix.lower() not in exts or not p.is_file():
            continue  # hidden files include our own temporary outputs
        if exclude is not None and exclude in p.resolve().parents:
            continue  # never feed our own outputs back in
        found.append(Item(str(p), p, rel))
    earlier = _earlier_outputs([it.path for it in found])
    found = [it for it in found if it.path not in earlier]
    return found or [Item(str(folder), None, Path(), error=f"{folder}: folder contains no images", usage=True)]


def expand_inputs(args: list[str], exclude: Path | None = None) -> list[Item]:
    """Files, folders (recursive) and globs -> items, in the order given; duplicates dropped."""
    items: list[Item] = []
    for a in args:
        if a == "-":
            items.append(Item("<stdin>", None, Path("stdin")))
            continue
        p = Path(a)
        if p.is_dir():
            items += _folder_items(p, exclude)
        elif p.exists() or os.path.lexists(p):
            items.append(Item(a, p, Path(p.name)))
        elif GLOB_CHARS & set(a):
            matches = sorted(glob.glob(a, recursive=True))
            if not matches:
                items.append(Item(a, None, Path(), error=f"{a}: no files match", usage=True))
            earlier = _earlier_outputs([Path(m) for m in matches])
            for m in (m for m in matches if Path(m) not in earlier):
                mp = Path(m)
                items += _folder_items(mp, exclude) if mp.is_dir() else [Item(m, mp, Path(mp.name))]
        else:
            items.append(Item(a, None, Path(), error=f"{a}: no such file", usage=True))
    seen, unique = set(), []
    for it in items:
        key = str(it.path.resolve()) if it.path is not None else it.label if it.error is None else id(it)
        if key not in seen:
            seen.add(key)
            unique.append(it)
    return unique


def output_is_folder(output: str | None, n_inputs: int, any_folder: bool) -> bool:
    if output is None or output == "-":
        return False
    p = Path(output)
    return p.is_dir() or output.endswith(("/", os.sep)) or not p.suffix or n_inputs > 1 or any_folder


def _ext(item: Item, fmt: str | None) -> str:
    if fmt:
        return "." + fmt.lower().lstrip(".")
    if item.path is not None and item.path.suffix:
        try:
            output_format(item.path)
            return item.path.suffix
        except DinstyleError:
            pass
    return ".png"


def check_format(fmt: str | None) -> None:
    """``--format`` is a bare extension (png, .jpg, ...) that Pillow can write: never a path."""
    if fmt is None:
        return
    bare = fmt.lower().lstrip(".")
    if not re.fullmatch(r"[a-z0-9]{1,10}", bare):
        raise UsageError(f"--format {fmt!r}: give a file extension such as png, jpg or webp")
    try:
        output_format(Path("x." + bare))
    except DinstyleError:
        raise UsageError(f"--format {fmt}: not a format Pillow can write (png, jpg, webp, tif, ...)") from None


def assign_outputs(items: list[Item], output: str | None, fmt: str | None, overwrite: bool,
                   any_folder: bool, inputs: list = ()) -> None:
    """Set ``item.output`` for every usable item, or ``item.error``: the whole run's outputs are checked
    at once against every input (the items' own, and ``inputs``: styles, masks, model, ...) and against
    each other (``dinstyle.io.outputs.plan_outputs``)."""
    live = [it for it in items if it.error is None]
    check_format(fmt)
    if output == "-" and len(items) != 1:
        raise UsageError(f"-o - (stdout) carries one image, and {len(items)} inputs were given: "
                         "give one input, or -o FOLDER for several")
    to_dir = output_is_folder(output, len(items), any_folder)
    if to_dir and Path(output).exists() and not Path(output).is_dir():
        raise UsageError(f"-o {output}: is a file, but several inputs need an output folder")
    if output and not to_dir and output != "-":
        if fmt:
            raise UsageError("--format applies to -o FOLDER or default names; -o FILE takes its extension")
        try:
            output_format(output)
        except DinstyleError as e:
            raise UsageError(str(e)) from None
    planned = []
    for it in live:
        if output == "-" or (output is None and it.path is None):
            out = "-"
        elif to_dir:
            out = Path(output) / it.rel.parent / (it.rel.stem + _ext(it, fmt))
        elif output:
            out = Path(output)
        else:
            out = it.path.with_name(f"{it.path.stem}{SUFFIX}{_ext(it, fmt)}")
        planned.append(out)
    all_inputs = [it.path for it in items if it.error is not None and it.path is not None] + list(inputs)
    reasons = plan_outputs([(it.label, it.path, out) for it, out in zip(live, planned)], all_inputs, overwrite)
    terminal = next((r for r in reasons if r and r.kind == "terminal"), None)
    if terminal:  # stdout carries the run's only image: nothing could succeed
        raise UsageError(terminal)
    for it, out, reason in zip(live, planned, reasons):
        it.output, it.error = (None, reason) if reason else (out, None)
