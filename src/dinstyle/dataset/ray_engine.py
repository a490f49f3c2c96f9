"""The Ray engine (``--engine ray``, the ``ray`` extra): Ray Data streams the planned outputs through
``map_batches`` into a pool of actors, each holding the model and the style bank; the bank is put in
the object store once and every actor (on any node) reads it from there.

Fault tolerance is Ray Data's: the actors of a pool are created with ``max_restarts=-1`` and
``max_task_retries=-1``, so an actor that dies (a killed process, a lost node) is restarted and its batch
retried (tests/test_dataset_ray.py kills one; passing them ourselves is deprecated since Ray 2.60). A photo
that cannot be read is a failed row, not a failed task: Ray never retries it.

Results come back to the driver, which writes the files and the manifest: the output folder only has
to exist on the driver's machine, while the photos must be readable from every node (a shared folder
at the same path, or a URI such as s3://...; docs/DATASETS.md).
"""
from __future__ import annotations

import logging
from typing import Iterator

import numpy as np

from ..errors import DinstyleError, UsageError

COLUMNS = ("photo", "src", "variant", "style_index", "alpha", "preserve_color", "output", "fmt")


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs Ray Data: pip install 'dinstyle[ray]' (ray[data]>=2.60)") from None
    return ray


class RayStylizer:
    """The actor class of the pool: one ``Worker`` per actor, the bank fetched from the object store."""

    def __init__(self, spec: dict, bank: list):
        import ray
        import torch

        from ..models.stylecode import StyleCode
        from .work import Worker

        tensors, meta = ray.get(bank[0])  # wrapped in a list: Ray Data passes constructor arguments as they are
        torch.set_num_threads(int(spec["threads"]))
        self.worker = Worker(spec, StyleCode(tensors, meta))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["output"])
        rows = [{c: _plain(batch[c][i]) for c in COLUMNS} for i in range(n)]
        results = self.worker(rows)
        return {"output": np.array([r["output"] for r in results], dtype=object),
                "status": np.array([r["status"] for r in results], dtype=object),
                "error": np.array([r["error"] for r in results], dtype=object),
                "data": np.array([r["data"] for r in results], dtype=object),
                "cpu": np.array([r["cpu"] for r in results], dtype=np.float64)}


def _innermost(e: BaseException) -> BaseException:
    seen = {id(e)}
    while True:
        nxt = getattr(e, "cause", None) or e.__cause__
        if nxt is None or id(nxt) in seen:
            return e
        seen.add(id(nxt))
        e = nxt


def _line(e: BaseException) -> str:
    return next((line for line in str(e).splitlines() if line.strip()), "")[:160]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def run(rows: list[dict], spec: dict, bank, workers: int | None, address: str | None, chunk: int,
        actor=None) -> Iterator[list[dict]]:
    """Results, a batch at a time. Joins ``address`` (a running cluster) or the Ray already started in
    this process, else starts a local one for the job and stops it after. ``workers`` actors (default:
    as many as the cluster's CPUs hold at ``threads`` each)."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as e:  # no cluster at that address, ...
            raise DinstyleError(f"cannot start or join Ray ({str(e).splitlines()[0][:160]})") from None
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1) // (spec.get("threads") or 1)))
    try:
        yield from _stream(ray, rows, spec, bank, workers, chunk, actor or RayStylizer)
    except ray.exceptions.RayError as e:  # Ray wraps a worker's error in two layers: say what it was
        inner = _innermost(e)
        if isinstance(inner, DinstyleError):
            raise inner from e
        raise DinstyleError(f"a Ray worker failed ({type(inner).__name__}: {_line(inner)}); finished outputs "
                            "are kept: rerun the same command to resume") from e
    finally:
        if started:
            ray.shutdown()


def _stream(ray, rows: list[dict], spec: dict, bank, workers: int, chunk: int, actor) -> Iterator[list[dict]]:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours shows images/s and ETA; two bars would fight over the line
    ctx.verbose_progress = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its INFO and WARNING lines would scroll past our bar
    ref = ray.put(({k: v.cpu() for k, v in bank.tensors.items()}, dict(bank.meta)))
    gpus = 1 if str(spec.get("device", "cpu")).startswith("cuda") else 0
    ds = ray.data.from_items([{c: r[c] for c in COLUMNS} for r in rows])
    ds = ds.map_batches(actor, batch_size=chunk, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                        num_cpus=spec.get("threads") or 1, num_gpus=gpus,
                        fn_constructor_kwargs={"spec": spec, "bank": [ref]})
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        yield [{"output": str(o), "status": str(s), "error": str(e), "data": bytes(d), "cpu": float(c)}
               for o, s, e, d, c in zip(batch["output"], batch["status"], batch["error"], batch["data"], batch["cpu"])]
