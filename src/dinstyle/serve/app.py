"""The web application: the page at ``/`` and the JSON/HTTP API under ``/api`` (Starlette, served by uvicorn).

Routes: ``GET /`` (the page), ``GET /api/styles`` (the built-in styles), ``GET /api/styles/NAME`` (a
thumbnail), ``GET /api/info`` (model, limits), ``GET /api/example`` (the example photo, in a source
checkout), ``POST /api/stylize`` (multipart; the image bytes back). Every error is JSON ``{"error": "..."}``
with a 4xx status (503 when the queue is full or memory ran out, 500 for a bug: never a stack trace).

Uploads are held in memory up to ``max_upload`` bytes per request (a larger body is answered 413 before
it is parsed); Starlette spools a part over 1 MiB to an anonymous temporary file (unlinked at creation,
closed after the request), so nothing is ever left on disk.
"""
from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import traceback
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import DinstyleError
from ..io.builtin_styles import LICENCE, STYLES, builtin_style
from ..version import __version__
from . import is_loopback
from .jobs import Busy, JobQueue
from .service import FORMATS, MAX_STYLE_SIZE, MAX_STYLES, StyleService, Upload, parse_request

DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024
DRAIN_EXTRA = 64 * 1024 * 1024  # an oversized body is read (and dropped) up to this much more, so that
# clients that send it all before reading the answer still get the 413; past that the connection closes
# The page loads nothing from anywhere else, and the browser is told to refuse it if it tried.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class TooLarge(Exception):
    """The request body passed the upload limit while it was being read."""


def error(status: int, message: str, **headers) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def too_large(max_upload: int) -> Response:
    mb = max_upload / (1024 * 1024)
    return error(413, f"upload too large: the limit is {mb:g} MiB per request (dinstyle serve --max-upload-mb)",
                 connection="close")


def example_photo() -> Path | None:
    """``examples/content.jpg`` of a source checkout (not in the wheel): the page's 'example' button."""
    p = Path(__file__).resolve().parents[3] / "examples" / "content.jpg"
    return p if p.is_file() else None


class Guard:
    """Outermost ASGI layer: the upload limit (413), and, on a loopback address, the Host check that
    keeps other web sites out (DNS rebinding) and the Origin check on POST (cross-site form posts)."""

    def __init__(self, app, max_upload: int, loopback_only: bool):
        self.app, self.max_upload, self.loopback_only = app, max_upload, loopback_only

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_upload):
            if headers.get("expect", "").lower() != "100-continue":  # the body is on its way: let it arrive
                await self._drain(receive)
            return await too_large(self.max_upload)(scope, receive, send)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_upload:
                    raise TooLarge()
            return message

        await self.app(scope, limited, send)

    def _refusal(self, scope, headers) -> Response | None:
        try:
            host = urlsplit("//" + headers.get("host", "")).hostname or ""
            origin = headers.get("origin")
            origin = None if origin is None else urlsplit(origin).netloc.lower()
        except ValueError:  # an unparsable Host or Origin
            host, origin = "", ""
        if self.loopback_only and not is_loopback(host):
            return error(403, f"host {host[:60]!r} refused: this server answers on 127.0.0.1/localhost only")
        # browsers send Origin with every POST (the string 'null' from sandboxed frames): only this page's own
        if scope["method"] == "POST" and origin is not None and origin != headers.get("host", "").lower():
            return error(403, "cross-origin request refused (use the page served here, curl or a script)")
        return None

    async def _drain(self, receive) -> None:
        dropped = 0
        while dropped <= self.max_upload + DRAIN_EXTRA:
            message = await receive()
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def create_app(stylizer, *, max_upload: int = DEFAULT_MAX_UPLOAD, max_pixels: int | None = None,
               max_queue: int = 8, loopback_only: bool = True, load_warnings: list[str] | None = None,
               quiet: bool = True):
    """The ASGI application around a loaded Stylizer (the model is loaded once, by the caller)."""
    service = StyleService(stylizer, max_pixels)
    jobs = JobQueue(max_queue)
    page = resources.files("dinstyle.serve").joinpath("page.html").read_bytes()
    example = example_photo()

    def log(line: str) -> None:
        if not quiet:
            print(f"dinstyle: {line}", file=sys.stderr, flush=True)

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def styles(request: Request) -> Response:
        return JSONResponse({"styles": [
            {"name": s.name, "style": f"builtin:{s.name}", "title": s.title, "artist": s.artist, "year": s.year,
             "source": s.url, "licence": LICENCE, "thumbnail": f"/api/styles/{s.name}"} for s in STYLES.values()]})

    async def thumbnail(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STYLES:
            return error(404, f"no built-in style {name[:60]!r} (GET /api/styles lists them)")
        return FileResponse(builtin_style(name).path, media_type="image/jpeg",
                            headers={"Cache-Control": "max-age=86400"})

    async def example_route(request: Request) -> Response:
        if example is None:
            return error(404, "no example photo in this installation")
        return FileResponse(example, media_type="image/jpeg")

    async def info(request: Request) -> Response:
        return JSONResponse({
            "version": __version__, "model": stylizer.model_id, "device": str(stylizer.device),
            "dtype": str(stylizer.dtype).replace("torch.", ""), "warnings": load_warnings or [],
            "default_style_size": service.default_style_size, "max_style_size": MAX_STYLE_SIZE,
            "stroke_control": stylizer.model.stroke_control,
            "max_styles": MAX_STYLES, "formats": sorted(FORMATS), "max_upload_bytes": max_upload,
            "max_pixels": service.max_pixels, "max_queue": jobs.max_pending, "queued": jobs.pending,
            "cached_styles": service.cached_styles, "example": example is not None})

    async def stylize(request: Request) -> Response:
        t0 = time.perf_counter()
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            return error(415, "send a multipart/form-data body, e.g. curl -F content=@photo.jpg "
                              "-F style=builtin:irises")
        try:
            async with request.form(max_files=MAX_STYLES + 1, max_fields=32, max_part_size=64 * 1024) as form:
                fields: dict[str, list] = {}
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        value = Upload(value.filename or "", await value.read())
                    fields.setdefault(key, []).append(value)
        except TooLarge:
            return too_large(max_upload)
        except HTTPException as e:  # Starlette's multipart refusals (too many files/fields, a field too long)
            return error(400, f"bad multipart form: {e.detail}")
        except Exception as e:  # a malformed body
            return error(400, f"bad multipart form ({(str(e).splitlines() or [type(e).__name__])[0][:120]})")
        try:
            req = parse_request(fields)
            future = jobs.submit(service.run, req)
            del fields
            timed = await asyncio.wrap_future(future)
        except Busy as e:
            log(f"POST /api/stylize 503 {e}")
            return error(503, str(e), **{"Retry-After": "2"})
        except DinstyleError as e:
            log(f"POST /api/stylize 400 {e}")
            return error(400, str(e))
        except MemoryError:
            log("POST /api/stylize 503 out of memory")
            return error(503, "out of memory; try a smaller max_size")
        except Exception as e:
            if _is_oom(e):
                log("POST /api/stylize 503 out of memory")
                return error(503, "out of memory; try a smaller max_size")
            traceback.print_exc(file=sys.stderr)  # for the server's log only
            first = (str(e).splitlines() or [""])[0][:160]
            return error(500, f"internal error: {type(e).__name__}: {first}")
        res = timed.value
        headers = {
            "Content-Disposition": f'inline; filename="{res.filename}"',
            "Server-Timing": f"queue;dur={timed.waited * 1000:.1f}, stylize;dur={timed.ran * 1000:.1f}",
            "X-Dinstyle-Style-Cache": res.cache,
            "X-Dinstyle-Size": f"{res.size[0]}x{res.size[1]}",
            "Cache-Control": "no-store",
        }
        if res.warnings:
            text = " | ".join(res.warnings)
            headers["X-Dinstyle-Warning"] = text.encode("ascii", "replace").decode("ascii")[:1000]
        log(f"POST /api/stylize 200 {res.size[0]}x{res.size[1]} {res.media_type} "
            f"{time.perf_counter() - t0:.2f} s (queued {timed.waited:.2f} s, style cache {res.cache})")
        return Response(res.data, media_type=res.media_type, headers=headers)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = {404: f"no such page: {request.url.path[:80]}",
                   405: f"{request.method} is not allowed on {request.url.path[:80]}"}.get(exc.status_code, exc.detail)
        return error(exc.status_code, message, **(exc.headers or {}))

    async def body_too_large(request: Request, exc: TooLarge) -> Response:
        return too_large(max_upload)

    async def bug(request: Request, exc: Exception) -> Response:
        traceback.print_exception(exc, file=sys.stderr)
        return error(500, f"internal error: {type(exc).__name__}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.close()

    app = Starlette(
        routes=[Route("/", index), Route("/api/styles", styles), Route("/api/styles/{name}", thumbnail),
                Route("/api/info", info), Route("/api/example", example_route),
                Route("/api/stylize", stylize, methods=["POST"])],
        exception_handlers={HTTPException: http_error, TooLarge: body_too_large, Exception: bug},
        lifespan=lifespan)
    app.state.service, app.state.jobs = service, jobs
    return Guard(app, max_upload, loopback_only)


def _is_oom(e: BaseException) -> bool:
    import torch

    return isinstance(e, getattr(torch, "OutOfMemoryError", MemoryError))


def serve(app, sock) -> None:
    """Serve ``app`` on an already bound, listening socket until Ctrl+C (or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, http="h11", ws="none", lifespan="on", log_level="warning",
                            access_log=False, server_header=False, timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])

