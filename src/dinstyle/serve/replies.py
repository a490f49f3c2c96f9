"""What the server answers when it refuses a request, and its log: one line on stderr per request answered
by the API and per refusal anywhere (403, 404, 405, 413, 415, 400, 503, 500), so the operator sees
every request that did not get what it asked for."""
from __future__ import annotations

import sys

from starlette.responses import JSONResponse, Response


class TooLarge(Exception):
    """The request body passed the upload limit while it was being read."""


def error(status: int, message: str, **headers) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def too_large_message(max_upload: int) -> str:
    return (f"upload too large: the limit is {max_upload / (1024 * 1024):g} MiB per request "
            "(dinstyle serve --max-upload-mb)")


class RequestLog:
    """``dinstyle: METHOD PATH STATUS what`` on stderr, unless quiet."""

    def __init__(self, quiet: bool = True):
        self.quiet = quiet

    def line(self, scope, status: int, what: str) -> None:
        if not self.quiet:
            path = "".join(ch if ch.isprintable() else "?" for ch in scope.get("path", ""))[:80]
            print(f"dinstyle: {scope.get('method', '?')} {path} {status} {what}", file=sys.stderr, flush=True)

    def refuse(self, scope, status: int, message: str, **headers) -> Response:
        """The JSON refusal ``{"error": message}``, logged."""
        self.line(scope, status, message)
        return error(status, message, **headers)

    def too_large(self, scope, max_upload: int) -> Response:
        # the client may still be sending: close the connection rather than read the rest of its body
        return self.refuse(scope, 413, too_large_message(max_upload), connection="close")
