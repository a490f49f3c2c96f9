"""The manifest: one CSV row per planned output, in the output root (``manifest.csv``).

Columns: photo (relative to the photo folder), variant (0.. per photo), style (relative to the style
folder), alpha, preserve_color (0/1), seed, output (relative to the output root), status (``ok`` or
``failed``) and error (one line, empty when ok).

A kill must never corrupt it, whatever instant it strikes:

* during a run, each finished batch is appended with one ``write`` on a file opened ``O_APPEND`` (a
  signal cannot split a write to a local file), after the batch's images are in place;
* at the start and the end of a run the whole file is rewritten, sorted and with one row per output,
  through a temporary sibling renamed over it;
* reading ignores a torn last line (no newline: a power cut mid-write) and any malformed row; when an
  output appears twice, the later row wins.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable

from ..io.atomic import atomic_write

NAME = "manifest.csv"
COLUMNS = ("photo", "variant", "style", "alpha", "preserve_color", "seed", "output", "status", "error")
OK, FAILED = "ok", "failed"


def _encode(rows: Iterable[dict], header: bool = False) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(COLUMNS)
    for r in rows:
        w.writerow([" ".join(str(r.get(c, "")).split()) if c == "error" else r.get(c, "") for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def read(path: str | os.PathLike) -> dict[str, dict]:
    """Rows by output path (later rows win); a missing file reads as no rows."""
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a torn last line: drop it, its item is simply redone
    rows: dict[str, dict] = {}
    reader = csv.reader(io.StringIO(text))
    for fields in reader:
        if len(fields) != len(COLUMNS) or tuple(fields) == COLUMNS:
            continue
        row = dict(zip(COLUMNS, fields))
        if row["status"] in (OK, FAILED) and row["output"]:
            rows[row["output"]] = row
    return rows


def rewrite(path: str | os.PathLike, rows: dict[str, dict]) -> None:
    """Replace the manifest with ``rows`` (sorted by photo, then variant) in one rename."""
    ordered = sorted(rows.values(), key=lambda r: (r["photo"], int(r["variant"] or 0), r["output"]))
    data = _encode(ordered, header=True)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


class Appender:
    """Appends finished rows to the manifest, each batch in a single write."""

    def __init__(self, path: str | os.PathLike):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def append(self, rows: list[dict]) -> None:
        data = _encode(rows)
        while data:  # a regular file takes it whole; the loop only guards against a short write
            data = data[os.write(self.fd, data):]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
