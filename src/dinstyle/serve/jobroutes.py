"""Waiting for a job, and the job routes: ``GET /api/jobs/ID`` (progress) and ``DELETE /api/jobs/ID`` (cancel).

``POST /api/stylize`` stays one request that waits for its image, as before. While it waits, it watches its
connection: when the client goes away (a closed tab, the page's Cancel, curl's Ctrl+C, a client's timeout),
the server sees the ASGI ``http.disconnect`` at once and cancels the job. The model stops at its next check
(between DIN levels, before every tile), so the lane is free for the next request. A client that wants
progress gives its own ``job_id`` field and reads ``GET /api/jobs/ID`` meanwhile (the page does so).
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Future

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .jobs import CANCELLED, GONE, STOPPING, TIMEOUT, Job, Timed

UNEXPECTED_PAUSE = 0.05  # after a message other than a disconnect (none is expected): never spin


async def wait_for_job(request: Request, job: Job, future: Future[Timed]) -> Timed:
    """The job's result. The job is cancelled if the client disconnects, if this request is abandoned by
    the server itself, or at its deadline (even while it waits in its lane)."""
    watcher = asyncio.ensure_future(_watch(request, job))
    remaining = job.remaining()
    timer = None if remaining is None else asyncio.get_running_loop().call_later(max(0.0, remaining),
                                                                                 job.cancel, TIMEOUT)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:  # the server is shutting down this request
        job.cancel(STOPPING)
        raise
    finally:
        watcher.cancel()
        if timer is not None:
            timer.cancel()


async def _watch(request: Request, job: Job) -> None:
    """Wait for the client to disconnect (the body has been read: the next message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancel(GONE)
            return
        await asyncio.sleep(UNEXPECTED_PAUSE)


def cancelled_reply(ctx, request: Request, job: Job, seconds: float) -> Response:
    """The answer to a request whose job was cancelled (nobody reads it when the client went away)."""
    reason = job.reason or CANCELLED
    steps = f"after {seconds:.2f} s, {job.steps} checks, stage {job.stage!r}"
    if reason == TIMEOUT:
        return ctx.log.refuse(request.scope, 504, f"stopped at the limit of {ctx.jobs.max_seconds:g} s per request "
                                                  "(dinstyle serve --max-seconds); try a smaller max_size")
    if reason == GONE:  # 499: nginx's 'client closed request', for the log only
        return ctx.log.refuse(request.scope, 499, f"cancelled: the client went away ({steps})")
    if reason == STOPPING:
        return ctx.log.refuse(request.scope, 503, "cancelled: the server is stopping")
    return ctx.log.refuse(request.scope, 409, f"cancelled by DELETE /api/jobs/{job.id} ({steps})")


def _job(request: Request) -> tuple[object, Job | None, Response | None]:
    ctx = request.app.state.ctx
    job_id = request.path_params["id"]
    job = ctx.jobs.get(job_id)
    if job is None:
        return ctx, None, ctx.log.refuse(request.scope, 404, f"no job {job_id[:70]!r} (unknown, or finished "
                                                             "long ago)")
    return ctx, job, None


def _status(ctx, job: Job) -> dict:
    return {**job.status(), "ahead": ctx.jobs.ahead(job)}


async def job_route(request: Request) -> Response:
    """GET: the job's state, stage, progress (tile passes done/total), check points passed, seconds (polls are
    not logged). DELETE: cancel it (202, and its POST is answered 409; 200 when it had already finished)."""
    ctx, job, refusal = _job(request)
    if refusal is not None:
        return refusal
    status = 200
    if request.method == "DELETE" and job.cancel(CANCELLED):  # a finished job: nothing to do (200)
        status = 202
        ctx.log.line(request.scope, status, f"job {job.id} cancelled ({job.state})")
    return JSONResponse(_status(ctx, job), status_code=status, headers={"Cache-Control": "no-store"})
