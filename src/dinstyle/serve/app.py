"""The web application: the page at ``/`` and the JSON/HTTP API under ``/api`` (Starlette, served by uvicorn).

Routes: ``GET /`` (the page; its scripts ``/job.js`` and ``/page.js``), ``GET /api/styles`` (the built-in
styles), ``GET /api/styles/NAME`` (a thumbnail), ``GET /api/info`` (model, limits), ``GET /api/example`` (the
example photo, in a source checkout), ``POST /api/stylize`` (multipart; the image bytes back), ``GET``/``DELETE /api/jobs/ID`` (a
request's progress; cancel it: ``jobroutes``). Every error is JSON ``{"error": "..."}`` with a 4xx status
(503 when the queue is full or memory ran out, 504 past ``--max-seconds``, 500 for a bug: never a stack
trace), and one line in the server's log.

Uploads are held in memory only, up to ``max_upload`` bytes per request (a larger body is answered 413
before it is parsed; ``form`` parses the rest without Starlette's spooling to temporary files).
"""
from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import Cancelled, DinstyleError
from ..io.builtin_styles import LICENCE, STYLES, builtin_style
from ..io.images import image_extensions
from ..version import __version__
from .form import FormError, parse_multipart
from .guard import Guard
from .jobroutes import cancelled_reply, job_route, wait_for_job
from .jobs import CANCELLED, GONE, SMALL_PIXELS, Busy, Conflict, JobQueue
from .replies import RequestLog, TooLarge
from .service import FORMATS, MAX_STYLE_SIZE, MAX_STYLES, StyleService, parse_request

DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024
# The page loads nothing from anywhere else, and the browser is told to refuse it if it tried.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
OOM = "out of memory; try a smaller max_size"
SCRIPTS = ("job.js", "page.js")  # the page's own, in the package beside page.html


@dataclass
class Context:
    """What the routes share (``request.app.state.ctx``)."""

    stylizer: object
    service: StyleService
    jobs: JobQueue
    log: RequestLog
    max_upload: int
    load_warnings: list[str]
    page: bytes
    scripts: dict[str, bytes]
    example: Path | None


def example_photo() -> Path | None:
    """``examples/content.jpg`` of a source checkout (not in the wheel): the page's 'example' button."""
    p = Path(__file__).resolve().parents[3] / "examples" / "content.jpg"
    return p if p.is_file() else None


def _ctx(request: Request) -> Context:
    return request.app.state.ctx


async def index(request: Request) -> Response:
    return Response(_ctx(request).page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def script(request: Request) -> Response:
    return Response(_ctx(request).scripts[request.url.path.lstrip("/")], media_type="text/javascript; charset=utf-8",
                    headers=PAGE_HEADERS)


async def styles(request: Request) -> Response:
    return JSONResponse({"styles": [
        {"name": s.name, "style": f"builtin:{s.name}", "title": s.title, "artist": s.artist, "year": s.year,
         "source": s.url, "licence": LICENCE, "thumbnail": f"/api/styles/{s.name}"} for s in STYLES.values()]})


async def thumbnail(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STYLES:
        return _ctx(request).log.refuse(request.scope, 404, f"no built-in style {name[:60]!r} "
                                                            "(GET /api/styles lists them)")
    return FileResponse(builtin_style(name).path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})


async def example_route(request: Request) -> Response:
    ctx = _ctx(request)
    if ctx.example is None:
        return ctx.log.refuse(request.scope, 404, "no example photo in this installation")
    return FileResponse(ctx.example, media_type="image/jpeg")


async def info(request: Request) -> Response:
    ctx = _ctx(request)
    st, service, jobs = ctx.stylizer, ctx.service, ctx.jobs
    return JSONResponse({
        "version": __version__, "model": st.model_id, "device": str(st.device),
        "dtype": str(st.dtype).replace("torch.", ""), "warnings": ctx.load_warnings,
        "default_style_size": service.default_style_size, "max_style_size": MAX_STYLE_SIZE,
        "stroke_control": st.model.stroke_control, "max_styles": MAX_STYLES, "formats": sorted(FORMATS),
        # what the server opens: the page previews a photo its browser cannot show only if it is one of these
        "read_extensions": sorted(image_extensions()),
        "max_upload_bytes": ctx.max_upload, "max_pixels": service.max_pixels, "max_queue": jobs.max_pending,
        "max_seconds": jobs.max_seconds, "small_pixels": jobs.small_pixels, "queued": jobs.pending,
        "lanes": jobs.lanes(), "cached_styles": service.cached_styles, "example": ctx.example is not None})


async def _read_form(request: Request) -> dict:
    """The multipart fields, parsed in memory (raises TooLarge past the limit, FormError if malformed)."""
    body = await request.body()
    return parse_multipart(body, request.headers.get("content-type", ""))


async def stylize(request: Request) -> Response:
    ctx, t0 = _ctx(request), time.perf_counter()
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return ctx.log.refuse(request.scope, 415, "send a multipart/form-data body, e.g. curl -F content=@photo.jpg "
                                                  "-F style=builtin:irises")
    try:
        fields = await _read_form(request)
    except TooLarge:
        return ctx.log.too_large(request.scope, ctx.max_upload)
    except FormError as e:
        return ctx.log.refuse(request.scope, 400, f"bad multipart form: {e}")
    job = None
    try:
        req = parse_request(fields)
        del fields
        job = ctx.jobs.job(await run_in_threadpool(ctx.service.pixels, req), req.job_id)
        future = ctx.jobs.submit(ctx.service.run, req, job, job=job)
        del req  # the job holds the upload until it ends (or leaves the queue, cancelled)
        timed = await wait_for_job(request, job, future)
    except Busy as e:
        return ctx.log.refuse(request.scope, 503, str(e), **{"Retry-After": "2"})
    except Conflict as e:
        return ctx.log.refuse(request.scope, 409, str(e))
    except Cancelled:
        return cancelled_reply(ctx, request, job, time.perf_counter() - t0)
    except DinstyleError as e:
        return ctx.log.refuse(request.scope, 400, str(e))
    except Exception as e:  # noqa: BLE001 -- out of memory, or a bug: a JSON answer and the server goes on
        return _failure(ctx, request, e)
    if job.reason in (GONE, CANCELLED):  # cancelled during a stage without check points (encoding): as cancelled
        return cancelled_reply(ctx, request, job, time.perf_counter() - t0)
    res = timed.value
    ctx.log.line(request.scope, 200, f"{res.size[0]}x{res.size[1]} {res.media_type} {time.perf_counter() - t0:.2f} s "
                                     f"(queued {timed.waited:.2f} s, {job.lane} lane, style cache {res.cache})")
    return Response(res.data, media_type=res.media_type, headers=_result_headers(res, timed, job))


def _failure(ctx: Context, request: Request, e: Exception) -> Response:
    """Out of memory (503: the server goes on), or a bug (500, its traceback in the log only)."""
    from ..runtime.runner import is_oom  # the one out-of-memory test (torch imported only once one is needed)

    if is_oom(e):
        return ctx.log.refuse(request.scope, 503, OOM)
    traceback.print_exception(e, file=sys.stderr)
    first = (str(e).splitlines() or [""])[0][:160]
    return ctx.log.refuse(request.scope, 500, f"internal error: {type(e).__name__}: {first}")


def _result_headers(res, timed, job) -> dict[str, str]:
    headers = {
        "X-Dinstyle-Job": job.id,
        "X-Dinstyle-Lane": job.lane,
        "Content-Disposition": f'inline; filename="{res.filename}"',
        "Server-Timing": f"queue;dur={timed.waited * 1000:.1f}, stylize;dur={timed.ran * 1000:.1f}",
        "X-Dinstyle-Style-Cache": res.cache,
        "X-Dinstyle-Size": f"{res.size[0]}x{res.size[1]}",
        "Cache-Control": "no-store",
    }
    if res.warnings:
        text = " | ".join(res.warnings)
        headers["X-Dinstyle-Warning"] = text.encode("ascii", "replace").decode("ascii")[:1000]
    return headers


async def http_error(request: Request, exc: HTTPException) -> Response:
    message = {404: f"no such page: {request.url.path[:80]}",
               405: f"{request.method} is not allowed on {request.url.path[:80]}"}.get(exc.status_code, exc.detail)
    return _ctx(request).log.refuse(request.scope, exc.status_code, message, **(exc.headers or {}))


async def body_too_large(request: Request, exc: TooLarge) -> Response:
    return _ctx(request).log.too_large(request.scope, _ctx(request).max_upload)


async def bug(request: Request, exc: Exception) -> Response:
    traceback.print_exception(exc, file=sys.stderr)
    return _ctx(request).log.refuse(request.scope, 500, f"internal error: {type(exc).__name__}")


ROUTES = [Route("/", index), *(Route(f"/{name}", script) for name in SCRIPTS), Route("/api/styles", styles), Route("/api/styles/{name}", thumbnail),
          Route("/api/info", info), Route("/api/example", example_route),
          Route("/api/stylize", stylize, methods=["POST"]),
          Route("/api/jobs/{id}", job_route, methods=["GET", "DELETE"])]


def _asset(name: str) -> bytes:
    return resources.files("dinstyle.serve").joinpath(name).read_bytes()


def create_app(stylizer, *, max_upload: int = DEFAULT_MAX_UPLOAD, max_pixels: int | None = None,
               max_queue: int = 8, loopback_only: bool = True, host_names: Iterable[str] = (),
               load_warnings: list[str] | None = None, quiet: bool = True, max_seconds: float | None = 300.0,
               small_pixels: int = SMALL_PIXELS, jobs: JobQueue | None = None):
    """The ASGI application around a loaded Stylizer (the model is loaded once, by the caller).
    ``loopback_only`` (from :func:`dinstyle.serve.bound_to_loopback`) turns on the Host/Origin checks;
    ``host_names``: names a request's Host may give besides localhost and loopback addresses.
    ``max_queue`` (per lane), ``small_pixels`` and ``max_seconds`` (None: no limit) make the job queue
    (``jobs``), unless one is given."""
    jobs = jobs or JobQueue(max_queue, small_pixels, max_seconds)
    ctx = Context(stylizer=stylizer, service=StyleService(stylizer, max_pixels), jobs=jobs,
                  log=RequestLog(quiet), max_upload=max_upload, load_warnings=list(load_warnings or []),
                  page=_asset("page.html"), scripts={name: _asset(name) for name in SCRIPTS}, example=example_photo())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        ctx.jobs.close()

    app = Starlette(routes=ROUTES, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, TooLarge: body_too_large, Exception: bug})
    app.state.ctx = ctx
    app.state.service, app.state.jobs = ctx.service, ctx.jobs
    return Guard(app, max_upload, loopback_only, ctx.log, host_names)


def serve(app, sock) -> None:
    """Serve ``app`` on an already bound, listening socket until Ctrl+C (or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, http="h11", ws="none", lifespan="on", log_level="warning",
                            access_log=False, server_header=False, timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])
