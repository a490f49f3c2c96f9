"""``stylize_dataset``: plan the job, encode the style bank once, run an engine, write every result
atomically and keep the manifest, so a rerun of the same command resumes where a crash left off."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from ..api import Stylizer
from ..errors import UsageError
from ..io.atomic import atomic_write
from . import bank as banks
from . import local, manifest, plan
from .options import DatasetOptions, check
from .tree import is_uri, list_images


@dataclass
class Summary:
    outputs: int  # planned outputs
    written: int  # written by this run
    done_before: int  # found finished
    failed: int  # failed, this run or recorded earlier
    seconds: float  # the whole call: listing, model, style bank, workers' start, stylizing
    manifest: Path
    steady_rate: float = 0.0  # images/s from the first finished batch to the last (start-up left out)
    cpu_seconds: float = 0.0  # the workers' CPU time on this run's photos (load-independent cost)

    @property
    def rate(self) -> float:
        """Images written per second of the whole call."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        failed = f"{self.failed} failed (listed in {self.manifest})" if self.failed else "0 failed"
        steady = f", {self.steady_rate:.1f} once started" if self.steady_rate else ""
        return (f"{self.outputs} outputs: {self.written} written, {self.done_before} done before, {failed}; "
                f"{self.seconds:.1f} s, {self.rate:.1f} images/s{steady}")


def stylize_dataset(content: str, style_dir: str, out: str | os.PathLike,
                    options: DatasetOptions = DatasetOptions()) -> Summary:
    """Stylize every photo under ``content`` with styles drawn from ``style_dir`` into the tree ``out``
    (same relative paths); see docs/DATASETS.md."""
    t0 = time.perf_counter()
    o = _run_settings(check(options))
    out = Path(out)
    plan.check_folders(content, style_dir, out)
    photos = list_images(content, exclude=None if is_uri(str(out)) else out)
    styles = list_images(style_dir)
    if not photos:
        raise UsageError(f"{content}: no images found")
    if not styles:
        raise UsageError(f"{style_dir}: no style images found")
    if o.styles_per_image > len(styles):
        raise UsageError(f"--styles-per-image {o.styles_per_image}: only {len(styles)} styles in {style_dir}")
    old = None if o.overwrite else plan.read_job(out)
    if old is not None:
        plan.compare(old["recipe"], {**o.recipe(), **{k: old["recipe"].get(k) for k in ("model", "weights", "styles")}},
                     out)  # before the model loads: a mistyped option is refused at once
    st = Stylizer.from_pretrained(o.model, device=o.device, seed=o.seed, half=False)
    code, kept, recipe, fresh = _bank(st, styles, out, o, old)
    rows = plan.plan(photos, kept, recipe)
    if old is None and not o.overwrite and (hit := plan.foreign_outputs(rows, out)):
        raise UsageError(f"{hit} exists and no dinstyle dataset job made it: use an empty -o, or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        banks.save(out / banks.NAME, code)
    plan.write_job(out, {"recipe": recipe, "photos": str(content), "style_dir": str(style_dir),
                         "bank_key": code.meta["key"], "styles": kept})
    recorded = {} if o.overwrite else manifest.read(out / manifest.NAME)
    todo, settled = plan.split_done(rows, out, recorded, o.retry_failed)
    if old is not None:
        plan.sweep_temporaries(out)
    done_before = sum(r["status"] == manifest.OK for r in settled.values())
    written, steady, cpu = _execute(st, code, o, out, todo, settled)
    failed = sum(r["status"] == manifest.FAILED for r in settled.values())
    return Summary(len(rows), written, done_before, failed, time.perf_counter() - t0, out / manifest.NAME, steady, cpu)


def _run_settings(o: DatasetOptions) -> DatasetOptions:
    """Workers and threads: one worker per core, one torch thread each, unless told. Processes scale on small
    images where threads do not, and a second thread per process measured up to 40x slower when other jobs
    hold the cores (benchmarks/RESULTS.md, Dataset throughput)."""
    cores = local.default_workers()
    workers = o.workers or (cores if o.engine == "local" else None)
    threads = o.threads or 1
    model = str(Path(o.model).resolve()) if Path(o.model).is_file() else o.model  # workers start elsewhere
    return replace(o, workers=workers, threads=threads, model=model)


def _bank(st: Stylizer, styles, out: Path, o: DatasetOptions, old: dict | None):
    """The style bank (reused when the style files and the model are those of the earlier run) and the
    full recipe; refuses a rerun whose styles changed."""
    key = banks.digest([st.model_id, st.fingerprint, st.style_size, [[n, banks.stamp(s)] for n, s in styles]])
    code = kept = None
    if old is not None and old.get("bank_key") == key:
        kept = old["styles"]
        code = banks.load(out / banks.NAME, key, kept)
    fresh = code is None
    if fresh:
        with local.torch_threads(o.threads):
            code, kept = banks.build(st, styles, key)
    recipe = {**o.recipe(), "model": st.model_id, "weights": st.fingerprint, "styles": banks.digest(kept)}
    if old is not None:
        plan.compare(old["recipe"], recipe, out)
    return code, kept, recipe, fresh


def _execute(st: Stylizer, code, o: DatasetOptions, out: Path, todo: list[dict], settled: dict
             ) -> tuple[int, float, float]:
    """Run the engine over ``todo``; each result is written, then recorded. The manifest is rewritten
    whole before (a clean file to append to) and after (sorted, one row per output), even on an error.
    Returns the outputs written, the steady rate (images/s after the first batch) and the workers' CPU s."""
    from tqdm import tqdm

    path = out / manifest.NAME
    manifest.rewrite(path, settled)
    appender = manifest.Appender(path)
    bar = tqdm(total=len(todo), unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.05,
               disable=not o.progress or not todo or None)
    by_output = {r["output"]: r for r in todo}
    written, done, first, cpu = 0, 0, None, 0.0
    try:
        for results in _engine(st, code, o, out, todo):
            if first is None:
                first = (time.perf_counter(), len(results))
            rows = []
            for res in results:
                cpu += res.get("cpu", 0.0)
                row = {**by_output[res["output"]], "status": res["status"], "error": res["error"]}
                if res["status"] == manifest.OK:
                    written += _write(out / res["output"], res["data"], row)
                if row["status"] == manifest.FAILED:
                    bar.write(f"dinstyle: error: {row['error']}", file=sys.stderr)
                settled[row["output"]] = row
                rows.append(row)
            appender.append(rows)
            bar.update(len(rows))
            done += len(rows)
    finally:
        bar.close()
        appender.close()
        manifest.rewrite(path, settled)
    after = done - first[1] if first else 0
    return written, after / (time.perf_counter() - first[0]) if after else 0.0, cpu


def _write(path: Path, data: bytes, row: dict) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
        return 1
    except OSError as e:
        row.update(status=manifest.FAILED, error=f"{path}: cannot write ({e.strerror or e})")
        return 0


def _engine(st: Stylizer, code, o: DatasetOptions, out: Path, todo: list[dict]) -> Iterator[list[dict]]:
    from .work import Worker

    spec = {"model": o.model, "seed": o.seed, "device": o.device, "threads": o.threads, "size": o.size,
            "max_size": o.max_size, "quality": o.quality, "batch_size": o.batch_size}
    chunk = max(16, 2 * o.batch_size)
    if not todo:
        return  # a rerun of a finished job starts nothing
    most = -(-len(todo) // chunk)  # a worker more than there are chunks would only start up
    workers = None if o.workers is None else min(o.workers, most)
    if o.engine == "ray":
        from . import ray_engine

        yield from ray_engine.run(todo, spec, code, workers, o.ray_address, chunk)
        return
    yield from local.run(_chunks(todo, chunk), spec, out / banks.NAME, workers, lambda: Worker(spec, code, st))


def _chunks(rows: list[dict], size: int) -> Iterator[list[dict]]:
    """Runs of about ``size`` rows that never split the variants of one photo (decoded once)."""
    start = 0
    while start < len(rows):
        end = min(len(rows), start + size)
        while end < len(rows) and rows[end]["photo"] == rows[end - 1]["photo"]:
            end += 1
        yield rows[start:end]
        start = end
