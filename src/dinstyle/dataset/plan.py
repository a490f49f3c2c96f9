"""Planning a job: the folders it may use, the job file of an earlier run, every output it will make
(photo x variant, with its draw) and which of them are already done.

The job file (``job.json`` in the output root) records the recipe, the styles of the bank (in bank
order) and the bank's key; it is what makes an output folder ours to resume or replace.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import UsageError
from ..io.atomic import atomic_write
from ..version import __version__
from . import manifest
from .assign import assign
from .tree import is_uri, output_rel

JOB = "job.json"
# what io.atomic leaves behind when a kill strikes mid-write: .NAME.<8 random characters>.tmp
_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def check_folders(content: str, styles: str, out: Path) -> None:
    """No output may land on an input: the output root is neither the photo folder nor above it or the
    style folder, nor inside the style folder (it may lie inside the photo folder: listing leaves it out)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: is a file; the output is a folder")
    o = out.resolve()
    for flag, location in (("CONTENT_DIR", content), ("--style-dir", styles)):
        if is_uri(location):
            continue
        p = Path(location).resolve()
        if p == o or o in p.parents:
            raise UsageError(f"-o {out}: would hold the {flag} {location} and could overwrite it; choose another -o")
        if flag == "--style-dir" and p in o.parents:  # the outputs would join the styles of the next run
            raise UsageError(f"-o {out}: lies inside the --style-dir {location}; choose another -o")


def read_job(out: Path) -> dict | None:
    try:
        return json.loads((out / JOB).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"{out / JOB}: unreadable job file ({e}); use --overwrite to start again") from None


def write_job(out: Path, job: dict) -> None:
    text = json.dumps({"dinstyle": __version__, **job}, indent=1)
    atomic_write(out / JOB, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def compare(old: dict, new: dict, out: Path) -> None:
    """Refuse to mix recipes in one folder: name what differs."""
    diff = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new.get(k)]
    if diff:
        raise UsageError(f"-o {out} holds a dataset made with other settings ({'; '.join(diff)[:240]}); "
                         "use another -o, the same settings, or --overwrite to start again")


def plan(photos: list[tuple[str, str]], styles: list[dict], recipe: dict) -> list[dict]:
    """Every planned output (one row each, manifest fields included), in photo order. Two photos that
    would share an output (a.jpg and a.png with --format png) both fail: neither is written."""
    k, seed = recipe["styles_per_image"], recipe["seed"]
    rows = []
    for rel, src in photos:
        for j, d in enumerate(assign(seed, rel, len(styles), k, tuple(recipe["alpha"]), recipe["preserve_color"])):
            out, fmt = output_rel(rel, j, k, recipe["format"])
            rows.append({"photo": rel, "src": src, "variant": j, "style_index": d.style, "style": styles[d.style]["name"],
                         "alpha": d.alpha, "preserve_color": int(d.preserve_color), "seed": seed, "output": out,
                         "fmt": fmt, "status": "", "error": ""})
    owners: dict[str, list[dict]] = {}
    for r in rows:
        owners.setdefault(os.path.normcase(r["output"]), []).append(r)
    for same in (v for v in owners.values() if len({r["photo"] for r in v}) > 1):
        names = ", ".join(sorted({r["photo"] for r in same}))
        for r in same:
            r.update(status=manifest.FAILED, error=f"{r['photo']}: output {r['output']} is shared by {names}; "
                     "neither is written")
    return rows


def split_done(rows: list[dict], out: Path, recorded: dict[str, dict], retry_failed: bool
               ) -> tuple[list[dict], dict[str, dict]]:
    """(rows still to do, manifest rows of everything settled). An output on disk is done (written whole,
    by rename), recorded or not (a kill can fall between the file and its row); a failure recorded stays
    failed unless ``retry_failed``."""
    todo, settled = [], {}
    for r in rows:
        old = recorded.get(r["output"])
        if r["status"] == manifest.FAILED:
            settled[r["output"]] = r
        elif (out / r["output"]).is_file():
            settled[r["output"]] = {**r, "status": manifest.OK, "error": ""}
        elif old is not None and old["status"] == manifest.FAILED and not retry_failed:
            settled[r["output"]] = {**r, "status": manifest.FAILED, "error": old["error"]}
        else:
            todo.append(r)
    return todo, settled


def foreign_outputs(rows: list[dict], out: Path) -> str | None:
    """An output (or a manifest) already in a folder that no job file claims: not ours to replace."""
    if (out / manifest.NAME).exists():
        return str(out / manifest.NAME)
    return next((str(out / r["output"]) for r in rows if (out / r["output"]).exists()), None)


def sweep_temporaries(out: Path) -> int:
    """Remove the temporary files a killed run left in its own output folder; returns how many."""
    n = 0
    for dirpath, _, filenames in os.walk(out):
        for name in filenames:
            if _TEMP.match(name):
                Path(dirpath, name).unlink(missing_ok=True)
                n += 1
    return n
