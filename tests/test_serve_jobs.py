"""Issue 24, item 2, without a web server: the job queue's lanes, pause, cancel and time limit (with a stand-in
job that checks its cancel hook in a loop, and a fake clock), the real model stopping at its cancel check,
the CLI's options, and the page's files in the wheel. No timing is measured: see ``serve_standin``."""
from __future__ import annotations

import threading
import time

import pytest
from serve_client import photo_bytes
from serve_standin import WAIT, FakeClock, SlowStylizer, until

from dinstyle.errors import Cancelled
from dinstyle.serve import missing_web_packages
from dinstyle.serve.jobs import GONE, TIMEOUT, JobQueue

web = pytest.mark.skipif(bool(missing_web_packages()), reason="the [web] extra is not installed")


# ------------------------------------------------------------------------------------------ the queue
def test_a_large_job_pauses_at_its_checks_while_a_small_one_runs():
    q = JobQueue(small_pixels=100)
    large, small = q.job(pixels=10_000), q.job(pixels=50)
    assert (large.lane, small.lane) == ("large", "small")
    large_started, large_go, small_started, small_go = (threading.Event() for _ in range(4))

    def large_fn():
        large_started.set()
        while not large_go.is_set():
            if large.cancelled():  # the model's check point (StyleOptions.cancel)
                raise Cancelled("cancelled")
            time.sleep(0.005)
        return "large"

    def small_fn():
        small_started.set()
        assert small_go.wait(WAIT)
        return "small"

    big = q.submit(large_fn, job=large)
    assert large_started.wait(WAIT)
    little = q.submit(small_fn, job=small)
    assert small_started.wait(WAIT)  # it runs although the large job has not finished
    until(lambda: large.state == "paused", "the large job paused at its next check")
    steps = large.steps
    small_go.set()
    assert little.result(WAIT).value == "small"
    until(lambda: large.steps > steps, "the large job resumed")
    assert large.state == "running" and not big.done()
    large_go.set()
    assert big.result(WAIT).value == "large"
    q.close()


def test_a_cancelled_job_that_waits_leaves_its_lane_at_once():
    q = JobQueue(max_pending=2)
    go, ran = threading.Event(), []
    first = q.submit(lambda: go.wait(WAIT))
    second_job = q.job()
    second = q.submit(ran.append, "second", job=second_job)
    assert second_job.cancel(GONE)
    assert isinstance(second.exception(WAIT), Cancelled)  # at once, while the first still runs
    assert second_job.state == "cancelled" and q.lanes()["small"] == 1
    third = q.submit(ran.append, "third")  # its place is free again
    go.set()
    first.result(WAIT)
    third.result(WAIT)
    assert ran == ["third"]
    q.close()


def test_the_time_limit_stops_a_running_job_and_a_queued_one_through_the_cancel_check():
    clock = FakeClock()
    q = JobQueue(max_seconds=300, clock=clock)
    started, checks = threading.Event(), []

    def slow(job):
        started.set()
        while not job.cancelled():
            checks.append(1)
            time.sleep(0.005)
        raise Cancelled("cancelled")

    job = q.job()
    future = q.submit(slow, job, job=job)
    queued = q.job()
    behind = q.submit(checks.append, "never", job=queued)
    assert started.wait(WAIT)
    clock.now += 301
    assert isinstance(future.exception(WAIT), Cancelled) and job.reason == TIMEOUT
    assert isinstance(behind.exception(WAIT), Cancelled) and queued.reason == TIMEOUT
    assert "never" not in checks
    q.close()


def test_closing_the_queue_stops_the_running_job():
    q = JobQueue()
    job, started = q.job(), threading.Event()

    def slow():
        started.set()
        while not job.cancelled():
            time.sleep(0.005)
        raise Cancelled("stopped")

    future = q.submit(slow, job=job)
    waiting = q.submit(lambda: None)
    assert started.wait(WAIT)
    q.close(timeout=WAIT)
    assert isinstance(future.exception(0), Cancelled) and isinstance(waiting.exception(0), Cancelled)


@web
def test_max_seconds_and_small_pixels_reach_the_app(monkeypatch):
    import dinstyle.cli.serve as cli_serve
    import dinstyle.serve.app as serve_app
    from dinstyle.cli import main

    seen = []
    monkeypatch.setattr(cli_serve, "load", lambda args: (SlowStylizer(), []))
    monkeypatch.setattr(serve_app, "create_app", lambda st, **kw: seen.append(kw) or "app")
    monkeypatch.setattr(serve_app, "serve", lambda app, sock: None)
    assert main(["serve", "--port", "0"]) == 0
    assert main(["serve", "--port", "0", "--max-seconds", "0", "--small-pixels", "1e6"]) == 0
    assert (seen[0]["max_seconds"], seen[0]["small_pixels"]) == (300, 2048 * 2048)
    assert (seen[1]["max_seconds"], seen[1]["small_pixels"]) == (None, 1_000_000)


def test_the_real_model_stops_at_its_cancel_check(tmp_path):
    """The service hands the job's hooks to the real Stylizer in one StyleOptions: the model checks
    ``cancel`` between its DIN levels and stops at the first True."""
    from conftest import tiny_model_file

    from dinstyle.api import Stylizer
    from dinstyle.serve.jobs import Job
    from dinstyle.serve.service import StyleService, Upload, parse_request

    st = Stylizer.from_pretrained(str(tiny_model_file(tmp_path / "tiny.safetensors")))
    service = StyleService(st)
    req = parse_request({"content": [Upload("p.png", photo_bytes(64, 48))], "style": ["builtin:irises"],
                         "style_size": ["64"], "alpha": ["0.6"], "stroke_size": ["1.5"], "preserve_color": ["on"]})
    assert (req.options.alpha, req.options.stroke_size, req.options.preserve_color) == (0.6, 1.5, True)

    class StopAtSecondCheck(Job):
        def cancelled(self) -> bool:
            super().cancelled()
            return self.steps >= 2

    job = StopAtSecondCheck()
    with pytest.raises(Cancelled):
        service.run(req, job)
    assert job.steps == 2 and job.stage == "stylizing"
    assert service.run(req, Job()).size == (64, 48)  # the same request, not cancelled, runs through


def test_every_file_the_page_loads_ships_in_the_wheel():
    """The page's scripts are package data (pyproject's ``[tool.setuptools.package-data]``): a wheel without
    them serves a page that does nothing."""
    import fnmatch
    import re
    from pathlib import Path

    from dinstyle.serve.app import SCRIPTS

    root = Path(__file__).resolve().parents[1]
    globs = re.search(r'^\[tool\.setuptools\.package-data\]\s*\ndinstyle\s*=\s*\[([^\]]*)\]',
                      (root / "pyproject.toml").read_text(), re.MULTILINE)
    assert globs, "no package-data for dinstyle in pyproject.toml"
    patterns = re.findall(r'"([^"]+)"', globs.group(1))
    for name in ("page.html", *SCRIPTS):
        assert (root / "src/dinstyle/serve" / name).is_file()
        assert any(fnmatch.fnmatch(f"serve/{name}", p) for p in patterns), f"serve/{name} is not package data"
