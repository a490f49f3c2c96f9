"""The job queue: one worker thread runs the model, one request at a time, in arrival order.

A model run holds a few copies of the image in memory; four requests at once on a CPU would only
fight over the same cores and quadruple the peak memory. Requests wait here instead, up to
``max_pending`` of them (running one included); more are refused at once with :class:`Busy`.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import DinstyleError


class Busy(DinstyleError):
    """The queue is full (the server answers 503)."""


@dataclass
class Timed:
    """A job's result with the seconds it waited in the queue and ran."""

    value: Any
    waited: float
    ran: float


class JobQueue:
    def __init__(self, max_pending: int = 8):
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dinstyle-job")
        self._lock = threading.Lock()
        self._pending = 0
        self.done = 0  # jobs finished (successfully or not)

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, fn: Callable[..., Any], *args, **kwargs) -> "Future[Timed]":
        """Queue ``fn(*args, **kwargs)``; the future gives a :class:`Timed` or raises what ``fn`` raised."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise Busy(f"the server is busy ({self._pending} requests queued); try again in a moment")
            self._pending += 1
        queued = time.perf_counter()

        def job() -> Timed:
            start = time.perf_counter()
            try:
                value = fn(*args, **kwargs)
            finally:
                self._finished()
            return Timed(value, start - queued, time.perf_counter() - start)

        future = self._pool.submit(job)
        future.add_done_callback(lambda f: self._finished() if f.cancelled() else None)  # never ran
        return future

    def _finished(self) -> None:
        with self._lock:
            self._pending -= 1
            self.done += 1

    def close(self) -> None:
        """Drop the jobs still waiting and wait for the running one."""
        self._pool.shutdown(wait=True, cancel_futures=True)
