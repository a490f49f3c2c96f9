"""Turning command-line inputs into work items: files, folders (recursive), globs and '-' (stdin), each
with its output path, or with the reason it cannot be done.

Output naming (also in docs/USAGE.md):
  * no ``-o``: next to the input, ``NAME_stylized.EXT`` (stdin goes to stdout);
  * ``-o FILE``: exactly one input; the format comes from FILE's extension; ``-o -`` is stdout;
  * ``-o DIR`` (an existing folder, a path ending in '/', a path without extension, or any run with
    several inputs): ``DIR/<path relative to the folder given>/NAME.EXT``.
EXT is the input's own extension when it can be written, else ``.png``; ``--format`` overrides it.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DinstyleError, UsageError
from ..imageio import image_extensions, output_format

GLOB_CHARS = set("*?[")


@dataclass
class Item:
    """One content image to stylize."""

    label: str  # how the user will recognise it in messages
    path: Path | None  # None: read from stdin
    rel: Path  # relative path kept under ``-o DIR``
    output: Path | str | None = None  # '-': stdout
    error: str | None = None


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
    return found or [Item(str(folder), None, Path(), error=f"{folder}: folder contains no images")]


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
                items.append(Item(a, None, Path(), error=f"{a}: no files match"))
            for m in matches:
                mp = Path(m)
                items += _folder_items(mp, exclude) if mp.is_dir() else [Item(m, mp, Path(mp.name))]
        else:
            items.append(Item(a, None, Path(), error=f"{a}: no such file"))
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


def assign_outputs(items: list[Item], output: str | None, fmt: str | None, overwrite: bool,
                   any_folder: bool) -> None:
    """Set ``item.output`` for every usable item, or ``item.error`` (never overwrite an input, never
    write one path twice, never replace an existing file without ``overwrite``)."""
    live = [it for it in items if it.error is None]
    if fmt:
        try:
            output_format(Path("x." + fmt.lower().lstrip(".")))
        except DinstyleError:
            raise UsageError(f"--format {fmt}: not a format Pillow can write (png, jpg, webp, tif, ...)") from None
    if output == "-" and len(items) != 1:
        raise UsageError("-o - (stdout) takes exactly one input")
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
    claimed: dict[str, str] = {}
    for it in live:
        if output == "-" or (output is None and it.path is None):
            it.output = "-"
            continue
        if to_dir:
            out = Path(output) / it.rel.parent / (it.rel.stem + _ext(it, fmt))
        elif output:
            out = Path(output)
        else:
            out = it.path.with_name(f"{it.path.stem}_stylized{_ext(it, fmt)}")
        key = str(out.resolve())
        if it.path is not None and it.path.exists() and key == str(it.path.resolve()):
            it.error = f"{it.label}: the output {out} would overwrite the input (choose another -o)"
        elif key in claimed:
            it.error = f"{it.label}: output {out} is also the output of {claimed[key]} (use -o FOLDER or --format)"
        elif out.exists() and not overwrite:
            it.error = f"{out}: already exists (use --overwrite to replace it)"
        else:
            claimed[key] = it.label
            it.output = out
