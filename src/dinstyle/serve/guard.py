"""The outermost ASGI layer, in front of every route: the upload limit (413), and, on a private server
(bound to a loopback address), the Host check that keeps other web sites out (DNS rebinding) and the
Origin check on POST and DELETE (cross-site form posts, cancels)."""
from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.responses import Response

from . import is_local_host
from .replies import RequestLog, TooLarge

DRAIN_EXTRA = 64 * 1024 * 1024  # an oversized body is read (and dropped) up to this much more, so that
# clients that send it all before reading the answer still get the 413; past that the connection closes
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Guard:
    def __init__(self, app, max_upload: int, loopback_only: bool, log: RequestLog, host_names: Iterable[str] = ()):
        self.app, self.max_upload, self.loopback_only, self.log = app, max_upload, loopback_only, log
        self.host_names = tuple(host_names)

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
            return await self.log.too_large(scope, self.max_upload)(scope, receive, send)
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive):
        """``receive`` that raises :class:`TooLarge` once the body passes the limit (no Content-Length)."""
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_upload:
                    if message.get("more_body", False):  # as with a Content-Length: let the rest arrive, so
                        await self._drain(receive)  # a client still sending reads the 413, not a broken pipe
                    raise TooLarge()
            return message

        return limited

    def _refusal(self, scope, headers) -> Response | None:
        try:
            host = urlsplit("//" + headers.get("host", "")).hostname or ""
            origin = headers.get("origin")
            origin = None if origin is None else urlsplit(origin).netloc.lower()
        except ValueError:  # an unparsable Host or Origin
            host, origin = "", ""
        if self.loopback_only and not is_local_host(host, self.host_names):
            return self.log.refuse(scope, 403, f"host {host[:60]!r} refused: this server answers on "
                                               "127.0.0.1/localhost only")
        # browsers send Origin with every POST or DELETE (the string 'null' from sandboxed frames): only this
        # page's own may change anything (a POST runs the model, a DELETE cancels someone's request)
        if scope["method"] not in SAFE_METHODS and origin is not None and origin != headers.get("host", "").lower():
            return self.log.refuse(scope, 403, "cross-origin request refused (use the page served here, "
                                               "curl or a script)")
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
