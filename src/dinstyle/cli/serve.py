"""`dinstyle serve`: the web page and JSON/HTTP API (needs the [web] extra: pip install 'dinstyle[web]')."""
from __future__ import annotations

import argparse
import math
import socket
import sys
import warnings

from ..errors import DinstyleError, UsageError

MAX_UPLOAD_MB = 65536.0  # uploads are held in memory: 64 GiB is already more than any machine should take
MAX_QUEUE = 10_000  # each waiting request holds its upload in memory
MAX_SECONDS = 7 * 24 * 3600.0  # a week; 0 turns the limit off
SMALL_PIXELS = 2048 * 2048  # serve.jobs.SMALL_PIXELS, without importing the web packages for --help


def bounded(kind: type, lo: float, hi: float, what: str):
    """argparse type: a finite number of ``kind`` in [lo, hi] (a bad value is a one-line usage error, exit 2)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def register(sub) -> None:
    from .stylize import pixel_count

    p = sub.add_parser("serve", help="a local web page and JSON/HTTP API (pip install 'dinstyle[web]')",
                       description="Serve a web page to restyle photos, and a JSON/HTTP API beside it "
                       "(POST /api/stylize, GET /api/styles). The model loads once; requests queue for it.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer "
                   "only; 0.0.0.0 lets anyone who can reach this machine use it)")
    p.add_argument("--port", type=bounded(int, 0, 65535, "a port from 0 to 65535"), default=7860,
                   help="port (0 = any free one) (default 7860)")
    p.add_argument("--model", default=None, help="architecture name or model file (default: the default model)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    half = p.add_mutually_exclusive_group()
    half.add_argument("--half", dest="half", action="store_true", default=None, help="float16 (default on CUDA)")
    half.add_argument("--no-half", dest="half", action="store_false", help="float32 everywhere")
    p.add_argument("--seed", type=bounded(int, 0, 2**64 - 1, "a whole number from 0 to 2**64-1"), default=0,
                   help="seed for everything random (untrained models) (default 0)")
    p.add_argument("--max-upload-mb", type=bounded(float, 1 / 1024, MAX_UPLOAD_MB,
                                                   f"a size in MiB from 1/1024 to {MAX_UPLOAD_MB:g}"),
                   default=50.0, metavar="MB", help="largest request body, in MiB; larger uploads get 413 (default 50)")
    p.add_argument("--max-pixels", type=pixel_count, default=None, metavar="P",
                   help="refuse images above P pixels (decompression-bomb guard; default 150e6)")
    p.add_argument("--max-queue", type=bounded(int, 1, MAX_QUEUE, f"a whole number from 1 to {MAX_QUEUE}"),
                   default=8, metavar="N", help="requests waiting for the model at most, per lane (the running one "
                   "included); more get 503 (default 8)")
    p.add_argument("--max-seconds", type=bounded(float, 0, MAX_SECONDS, f"seconds from 0 to {MAX_SECONDS:g}"),
                   default=300.0, metavar="S", help="stop a request S seconds after it arrived, queue included, "
                   "and answer 504 (0 = no limit; default 300)")
    p.add_argument("--small-pixels", type=pixel_count, default=SMALL_PIXELS, metavar="P",
                   help="requests of at most P pixels (after max_size) run in their own lane, never behind a larger "
                   "one, which pauses for them (default 4194304 = 2048x2048)")
    p.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    p.set_defaults(func=run)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket (bound before the model loads, so a port in use fails at once). The host
    is resolved as a server binds (getaddrinfo, AI_PASSIVE) and the first address is bound; whether the
    server is private is then read from that socket (``dinstyle.serve.bound_to_loopback``)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise UsageError(f"--host {host}: not an address of this machine ({getattr(e, 'strerror', None) or e})"
                         ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise DinstyleError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port") from None
    return sock


def load(args):
    """The Stylizer, and the warnings its loading gave (printed here, and shown on the page)."""
    from ..api import Stylizer
    from ..models import DEFAULT_MODEL

    with warnings.catch_warnings(record=True) as caught:  # e.g. an untrained model
        warnings.simplefilter("always")
        st = Stylizer.from_pretrained(args.model or DEFAULT_MODEL, device=args.device, half=args.half, seed=args.seed)
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    for note in notes:
        print(f"dinstyle: warning: {note}", file=sys.stderr)
    return st, notes


def run(args) -> int:
    from ..serve import INSTALL_HINT, bound_to_loopback, missing_web_packages

    missing = missing_web_packages()
    if missing:
        raise DinstyleError(f"serve needs the web extra ({', '.join(missing)} missing): {INSTALL_HINT}")
    sock = listen(args.host, args.port)
    try:
        from ..serve.app import create_app, serve

        st, notes = load(args)
        private = bound_to_loopback(sock)
        app = create_app(st, max_upload=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                         max_queue=args.max_queue, loopback_only=private, host_names=[args.host],
                         load_warnings=notes, quiet=args.quiet, max_seconds=args.max_seconds or None,
                         small_pixels=args.small_pixels)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        if not private:
            print(f"dinstyle: warning: listening on {args.host} ({host}): anyone who can reach this machine on "
                  f"port {port} can use the page and the API (no password, no encryption)", file=sys.stderr)
        print(f"dinstyle: serving http://{shown}:{port}/ (model {st.model_id} on {st.device}); Ctrl+C stops it",
              flush=True)
        try:
            serve(app, sock)
        except KeyboardInterrupt:  # uvicorn has shut down gracefully, then passes Ctrl+C on
            print("dinstyle: stopped", file=sys.stderr)
    finally:
        sock.close()
    return 0
