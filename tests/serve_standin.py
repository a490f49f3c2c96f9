"""The slow stand-in for the server's Stylizer, and a live server around it (issue 24's tests).

Nothing here measures time. The stand-in runs until the test releases it, reporting progress and checking
its cancel callback in a loop, as the model does between DIN levels and before tiles. Each test waits for
events, with bounded waits far longer than any of these steps takes, and the stand-in gives up after a
minute, so a cancel that never arrives fails the test instead of hanging it. The server is real (uvicorn
on a free port, in a thread), so a client that goes away is a closed socket."""
from __future__ import annotations

import json
import queue
import socket
import threading
import time
from types import SimpleNamespace

import torch

from serve_client import Server, photo_bytes

from dinstyle.errors import Cancelled
from dinstyle.runtime.codecache import CodeCache

WAIT = 30  # the bound on every wait for something that should happen at once
TOTAL = 40  # the stand-in's tile passes


class Run:
    """One call of the stand-in's stylize: the test sees it start, may release it, sees it stop."""

    def __init__(self, x, options):
        self.size = tuple(x.shape[-2:])  # (H, W) after max_size
        self.options = options
        self.started, self.release, self.stopped = threading.Event(), threading.Event(), threading.Event()


class SlowStylizer:
    """Stands in for :class:`dinstyle.api.Stylizer` in the server: ``stylize`` returns at once for images of
    at most ``instant_pixels``, else loops until released, reporting tile passes and checking ``cancel``."""

    model_id, device, dtype, style_size = "slow-stand-in", "cpu", torch.float32, 64
    model = SimpleNamespace(stroke_control=True)

    def __init__(self, instant_pixels: int = 0, checks: bool = True):
        self.instant_pixels, self.checks = instant_pixels, checks  # checks=False: a stretch with no check point
        self.runs: queue.Queue[Run] = queue.Queue()
        self.codes = CodeCache()  # the server reads ``codes.last_hit``, as on the real Stylizer

    def encode_style(self, style, size):
        key = (getattr(style, "sha256", None) or str(style), size)
        return self.codes.get_or_make(key, lambda: "code")

    def stylize(self, x, code, options):
        run = Run(x, options)
        if x.shape[-2] * x.shape[-1] <= self.instant_pixels:
            return x[:, :3]
        self.runs.put(run)
        run.started.set()
        give_up, done = time.monotonic() + 60, 0
        while not run.release.is_set():
            done = min(done + 1, TOTAL - 1)
            options.progress(done, TOTAL)
            if self.checks and options.cancel():
                run.stopped.set()
                raise Cancelled("cancelled")
            assert time.monotonic() < give_up, "the stand-in was never cancelled nor released"
            run.release.wait(0.005)
        options.progress(TOTAL, TOTAL)
        return x[:, :3]

    def next_run(self) -> Run:
        run = self.runs.get(timeout=WAIT)
        assert run.started.wait(WAIT)
        return run


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def until(predicate, what: str):
    """Wait (bounded) for ``predicate()`` to hold."""
    give_up = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < give_up, f"never happened: {what}"
        time.sleep(0.01)


class Live:
    """``live(stylizer, **create_app options)`` -> a Server (test_serve's client) on uvicorn, in a thread;
    ``stop()`` ends them all."""

    def __init__(self):
        self.running = []

    def __call__(self, stylizer, **kw) -> Server:
        import uvicorn

        from dinstyle.serve.app import create_app

        app = create_app(stylizer, **kw)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        server = uvicorn.Server(uvicorn.Config(app, http="h11", ws="none", lifespan="on", log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        self.running.append((server, thread, sock))
        until(lambda: server.started, "uvicorn started")
        return Server(None, f"http://127.0.0.1:{sock.getsockname()[1]}/", None)

    def stop(self) -> None:
        for server, thread, sock in self.running:
            server.should_exit = True
            thread.join(WAIT)
            sock.close()


def post_in_thread(srv: Server, fields) -> dict:
    """Send a stylize request from a thread; the dict gets 'answer' (status, headers, body) when it comes."""
    out: dict = {"done": threading.Event()}

    def go():
        out["answer"] = srv.stylize(fields)
        out["done"].set()

    threading.Thread(target=go, daemon=True).start()
    return out


def fields(w=64, h=48, *extra):
    return [("content", ("p.png", photo_bytes(w, h))), ("style", "builtin:irises"), *extra]


def job_status(srv: Server, job_id: str) -> dict:
    status, _, body = srv.get(f"/api/jobs/{job_id}")
    assert status == 200, body[:200]
    return json.loads(body)


def error_of(answer) -> str:
    status, headers, body = answer
    assert headers["content-type"].startswith("application/json"), (status, body[:200])
    message = json.loads(body)["error"]
    assert "\n" not in message and "Traceback" not in message
    return message

