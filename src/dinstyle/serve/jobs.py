"""The job queue: two lanes, each with one worker thread that runs the model one request at a time in arrival
order, and the :class:`Job` that tracks each request (its id, stage, progress, and cancel flag).

Why two lanes and a pause. A model run holds a few copies of the image in memory, and runs side by side
on a CPU only fight over the same cores, so each lane runs one job at a time. With a single lane, a 0.5 MP
request waited 72 s behind a 12 MP one (issue 24). So requests are sorted by the pixels they will run
(after ``max_size``): up to ``small_pixels`` (default 2048 x 2048, which covers the page's default output
size) go to the small lane, the rest to the large lane. The two workers could simply run together, but
they would split the cores (torch's thread pools oversubscribe them). Instead the large job steps aside:
at each of its cancel checks (between DIN levels, before every tile) it waits while the small lane has
work. The small request runs alone at full speed, and the large one loses only the small ones' time.
The alternatives do worse: restarting the large job throws away its work, and time slices slow down both.
A pause at a check point costs only memory the large job already holds.

Each lane holds at most ``max_pending`` jobs (the running one included); more are refused with :class:`Busy`.
A job is cancelled (:meth:`Job.cancel`) when its client goes away, on ``DELETE /api/jobs/ID``, or at
``max_seconds`` after it arrived. A queued job leaves its lane at once; a running one stops at its next check
(the model raises :class:`~dinstyle.errors.Cancelled`).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..errors import Cancelled, DinstyleError

SMALL, LARGE = "small", "large"
SMALL_PIXELS = 2048 * 2048
GONE, CANCELLED, TIMEOUT, STOPPING = "client gone", "cancelled", "time limit", "server stopping"
ACTIVE = ("queued", "running", "paused")
KEEP_FINISHED = 32  # finished jobs whose status can still be read (the page's last poll comes after the answer)
PAUSE_POLL = 0.1  # a paused job wakes this often to see whether it was cancelled meanwhile


class Busy(DinstyleError):
    """The lane is full (the server answers 503)."""


class Conflict(DinstyleError):
    """A job id that a running or queued job already has (the server answers 409)."""


@dataclass
class Timed:
    """A job's result with the seconds it waited in the queue and ran."""

    value: Any
    waited: float
    ran: float


class Job:
    """One request, from queued through running (or paused) to done, failed, or cancelled. The model calls
    :meth:`cancelled` and :meth:`progress` (``StyleOptions.cancel`` and ``.progress``), and the service calls
    :meth:`enter` between its stages. Everything else reads :meth:`status`."""

    def __init__(self, job_id: str | None = None, lane: str = SMALL, pixels: int = 0, deadline: float | None = None,
                 clock: Callable[[], float] = time.monotonic, yield_to: threading.Event | None = None):
        self.id = job_id or secrets.token_urlsafe(12)
        self.lane, self.pixels, self.deadline, self._clock = lane, pixels, deadline, clock
        self.created, self.started, self.finished = clock(), None, None
        self.state, self.stage = "queued", "queued"
        self.done = self.total = self.steps = 0
        self.reason: str | None = None  # why it was cancelled
        self._flag = threading.Event()
        self._yield_to = yield_to  # large jobs: set while the small lane is idle
        self.on_cancel: Callable[[Job], None] | None = None  # the queue's: take it out of its lane if waiting

    def cancel(self, reason: str = CANCELLED) -> bool:
        """Ask the job to stop; False if it has already finished or been cancelled."""
        if self.reason is not None or self.state not in ACTIVE:
            return False
        self.reason = reason
        self._flag.set()
        if self.on_cancel is not None:
            self.on_cancel(self)
        return True

    def is_cancelled(self) -> bool:
        """Whether the job was cancelled or has passed its deadline (it is cancelled then)."""
        if not self._flag.is_set() and self.deadline is not None and self._clock() > self.deadline:
            self.cancel(TIMEOUT)
        return self._flag.is_set()

    def cancelled(self) -> bool:
        """``StyleOptions.cancel``: the model's check point. A large job waits here while a small one runs."""
        self.steps += 1
        self._step_aside()
        return self.is_cancelled()

    def _step_aside(self) -> None:
        if self._yield_to is None or self._yield_to.is_set() or self.is_cancelled():
            return
        self.state = "paused"
        # short waits rather than one long one, so that a cancel or the deadline still stops a paused job
        while not self._yield_to.wait(PAUSE_POLL) and not self.is_cancelled():
            pass
        self.state = "running"

    def progress(self, done: int, total: int) -> None:
        """``StyleOptions.progress``: tile passes done, out of total (tiled runs)."""
        self.done, self.total = done, total

    def enter(self, stage: str) -> None:
        """The service's next stage (a check point too); raises Cancelled instead if the job was cancelled."""
        self._step_aside()
        if self.is_cancelled():
            raise Cancelled(self.reason or CANCELLED)
        self.stage = stage

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._clock()

    def status(self) -> dict:
        now = self._clock()
        started, finished = self.started, self.finished
        return {"id": self.id, "state": self.state, "stage": self.stage, "lane": self.lane, "pixels": self.pixels,
                "done": self.done, "total": self.total, "steps": self.steps, "cancelled": self.reason,
                "waited": round((started or finished or now) - self.created, 3),
                "elapsed": round((finished or now) - self.created, 3)}


@dataclass
class _Item:
    job: Job
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    future: Future = field(default_factory=Future)


class _Lane:
    def __init__(self, name: str):
        self.name, self.waiting, self.running = name, deque(), None

    @property
    def pending(self) -> int:
        return len(self.waiting) + (self.running is not None)


class JobQueue:
    """The two lanes and the jobs' registry (by id). ``clock`` is replaceable for tests of the deadline."""

    def __init__(self, max_pending: int = 8, small_pixels: int = SMALL_PIXELS, max_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.max_pending, self.small_pixels, self.max_seconds = max_pending, small_pixels, max_seconds
        self.clock = clock
        self.done = 0  # jobs finished (successfully or not)
        self._cond = threading.Condition()
        self._small_idle = threading.Event()
        self._small_idle.set()
        self._lanes = {SMALL: _Lane(SMALL), LARGE: _Lane(LARGE)}
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, args=(lane,), name=f"dinstyle-{lane.name}", daemon=True)
                         for lane in self._lanes.values()]
        for t in self._threads:
            t.start()

    @property
    def pending(self) -> int:
        return sum(lane.pending for lane in self._lanes.values())

    def lanes(self) -> dict[str, int]:
        return {name: lane.pending for name, lane in self._lanes.items()}

    def job(self, pixels: int = 0, job_id: str | None = None) -> Job:
        """A new job for a request that will run ``pixels`` pixels (not queued yet: :meth:`submit` it)."""
        lane = SMALL if pixels <= self.small_pixels else LARGE
        deadline = None if not self.max_seconds else self.clock() + self.max_seconds
        return Job(job_id, lane, pixels, deadline, self.clock, self._small_idle if lane == LARGE else None)

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def ahead(self, job: Job) -> int:
        """How many jobs run before ``job`` in its lane (0 once it runs)."""
        lane = self._lanes[job.lane]
        with self._cond:
            ids = [item.job.id for item in lane.waiting]
            return ids.index(job.id) + (lane.running is not None) if job.id in ids else 0

    def submit(self, fn: Callable[..., Any], *args, job: Job | None = None, **kwargs) -> Future[Timed]:
        """Queue ``fn(*args, **kwargs)`` as ``job`` (default: a new small one); the future gives a :class:`Timed`
        or raises what ``fn`` raised (:class:`~dinstyle.errors.Cancelled` when the job was cancelled)."""
        job = job or self.job()
        item = _Item(job, fn, args, kwargs)
        with self._cond:
            lane = self._lanes[job.lane]
            if self._closed:
                raise Busy("the server is stopping")
            if lane.pending >= self.max_pending:
                raise Busy(f"the server is busy ({lane.pending} {lane.name} requests queued); try again in a moment")
            known = self._jobs.get(job.id)
            if known is not None and known.state in ACTIVE:
                raise Conflict(f"job_id {job.id!r} is already in use; give each request its own")
            self._jobs[job.id] = job
            self._jobs.move_to_end(job.id)
            lane.waiting.append(item)
            job.on_cancel = self._drop
            self._update_idle()
            self._cond.notify_all()
        return item.future

    def _drop(self, job: Job) -> None:
        """A cancelled job still waiting leaves its lane at once (and frees its place and its upload)."""
        with self._cond:
            lane = self._lanes[job.lane]
            item = next((it for it in lane.waiting if it.job is job), None)
            if item is None:
                return  # running: it stops at its next check
            lane.waiting.remove(item)
            self._retire(job, "cancelled")
        item.future.set_exception(Cancelled(job.reason or CANCELLED))

    def _retire(self, job: Job, state: str) -> None:
        """(Under the lock.) The job is over; the registry keeps the last ``KEEP_FINISHED`` finished ones."""
        job.state, job.finished = state, self.clock()
        self.done += 1
        self._update_idle()
        self._cond.notify_all()
        finished = [k for k, j in self._jobs.items() if j.state not in ACTIVE]
        for k in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[k]

    def _update_idle(self) -> None:
        if self._lanes[SMALL].pending:
            self._small_idle.clear()
        else:
            self._small_idle.set()

    def _work(self, lane: _Lane) -> None:
        while True:
            with self._cond:
                while not lane.waiting and not self._closed:
                    self._cond.wait()
                if not lane.waiting:
                    return
                item = lane.waiting.popleft()
                lane.running = item.job
            state, outcome = self._run(item)
            with self._cond:  # over before its answer goes out: a client then never sees its job still queued
                lane.running = None
                self._retire(item.job, state)
            if state == "done":
                item.future.set_result(outcome)
            else:
                item.future.set_exception(outcome)

    def _run(self, item: _Item) -> tuple[str, Timed | BaseException]:
        """Run one job in this thread: the state it ends in, and its result or what it raised."""
        job, start = item.job, time.perf_counter()
        waited = self.clock() - job.created
        job.started, job.state = self.clock(), "running"
        try:
            job.enter("starting")  # cancelled, or past its deadline, while it waited
            value = item.fn(*item.args, **item.kwargs)
        except BaseException as e:  # noqa: BLE001 -- handed to the waiting request, which answers it
            return ("cancelled" if isinstance(e, Cancelled) else "failed"), e
        return "done", Timed(value, waited, time.perf_counter() - start)

    def close(self, timeout: float = 30.0) -> None:
        """Drop the waiting jobs, cancel the running ones and wait (up to ``timeout`` s) for them to stop."""
        with self._cond:
            self._closed = True
            dropped = [item for lane in self._lanes.values() for item in lane.waiting]
            running = [lane.running for lane in self._lanes.values() if lane.running is not None]
            for lane in self._lanes.values():
                lane.waiting.clear()
            for item in dropped:
                item.job.reason = STOPPING
                self._retire(item.job, "cancelled")
            self._cond.notify_all()
        for item in dropped:
            item.future.set_exception(Cancelled(STOPPING))
        for job in running:
            job.cancel(STOPPING)
        for t in self._threads:
            t.join(timeout)
