"""The local engine: worker processes on this machine, each holding the model and the style bank (read
from the bank file), each running its torch ops on ``threads`` threads.

One worker runs in this process (no start-up, no copying). Several are spawned, not forked: a fork of a
process whose OpenMP pool has run can hang. At most ``AHEAD`` chunks per worker are queued, so a
million-photo job never holds its whole plan in the queue, and a kill loses only those in flight.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from ..errors import DinstyleError
from . import bank as banks
from .work import Worker

AHEAD = 3
_worker: Worker | None = None  # the worker of a pool process


def default_workers() -> int:
    """One worker per core: on small CPU images, processes scale better than torch's own threads."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int):
    """Run the block on ``n`` torch threads, then leave the caller's process as it was. On a loaded machine
    two threads per process measured up to 40x slower than one (OpenMP threads wait for each other while
    other processes hold the cores): benchmarks/RESULTS.md, Dataset throughput."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _start(spec: dict, bank_path: str, driver: int) -> None:
    global _worker
    threading.Thread(target=_orphan_watch, args=(driver,), daemon=True).start()
    torch.set_num_threads(int(spec["threads"]))
    code = banks.load(Path(bank_path))
    if code is None:
        raise DinstyleError(f"{bank_path}: style bank missing")
    _worker = Worker(spec, code)


def _orphan_watch(driver: int) -> None:
    """End this worker when the driver is gone: a SIGKILLed driver would otherwise leave it blocked forever
    on the pool's pipes (the workers hold both ends of them)."""
    while os.getppid() == driver:
        time.sleep(1.0)
    os._exit(1)


def _work(rows: list[dict]) -> list[dict]:
    return _worker(rows)


def run(chunks: Iterable[list[dict]], spec: dict, bank_path: Path, workers: int,
        make_local: Callable[[], Worker]) -> Iterator[list[dict]]:
    """Results of each chunk, as they finish (in order with one worker). ``make_local`` builds the
    in-process worker (reusing the model the driver already loaded)."""
    if workers == 1:
        worker = make_local()
        with torch_threads(spec["threads"]):
            for rows in chunks:
                yield worker(rows)
        return
    ctx = multiprocessing.get_context("spawn")
    pending = set()
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start,
                                 initargs=(spec, str(bank_path), os.getpid())) as pool:
            it = iter(chunks)
            while True:
                for rows in _take(it, workers * AHEAD - len(pending)):
                    pending.add(pool.submit(_work, rows))
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
    except BrokenProcessPool:
        raise DinstyleError("a worker process died (killed, or out of memory?); finished outputs are kept: "
                            "rerun the same command to resume") from None


def _take(it: Iterator, n: int) -> list:
    out = []
    for _ in range(max(0, n)):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out
