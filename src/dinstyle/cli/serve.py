"""`dinstyle serve`: the web page and JSON/HTTP API (needs the [web] extra: pip install 'dinstyle[web]')."""
from __future__ import annotations

import socket
import sys
import warnings

from ..errors import DinstyleError, UsageError


def register(sub) -> None:
    from .stylize import pixel_count

    p = sub.add_parser("serve", help="a local web page and JSON/HTTP API (pip install 'dinstyle[web]')",
                       description="Serve a web page to restyle photos, and a JSON/HTTP API beside it "
                       "(POST /api/stylize, GET /api/styles). The model loads once; requests queue for it.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer "
                   "only; 0.0.0.0 lets anyone who can reach this machine use it)")
    p.add_argument("--port", type=int, default=7860, help="port (0 = any free one) (default 7860)")
    p.add_argument("--model", default=None, help="architecture name or model file (default: the default model)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    half = p.add_mutually_exclusive_group()
    half.add_argument("--half", dest="half", action="store_true", default=None, help="float16 (default on CUDA)")
    half.add_argument("--no-half", dest="half", action="store_false", help="float32 everywhere")
    p.add_argument("--seed", type=int, default=0, help="seed for everything random (untrained models) (default 0)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, metavar="MB",
                   help="largest request body, in MiB; larger uploads get 413 (default 50)")
    p.add_argument("--max-pixels", type=pixel_count, default=None, metavar="P",
                   help="refuse images above P pixels (decompression-bomb guard; default 150e6)")
    p.add_argument("--max-queue", type=int, default=8, metavar="N",
                   help="requests waiting for the model at most (the running one included); more get 503 (default 8)")
    p.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    p.set_defaults(func=run)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket (bound before the model loads, so a port in use fails at once)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise UsageError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise DinstyleError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port") from None
    return sock


def run(args) -> int:
    from ..serve import INSTALL_HINT, is_loopback, missing_web_packages

    missing = missing_web_packages()
    if missing:
        raise DinstyleError(f"serve needs the web extra ({', '.join(missing)} missing): {INSTALL_HINT}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise UsageError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.max_queue < 1:
        raise UsageError(f"--max-queue must be >= 1, got {args.max_queue}")
    sock = listen(args.host, args.port)
    try:
        from ..api import Stylizer
        from ..models import DEFAULT_MODEL
        from ..serve.app import create_app, serve

        with warnings.catch_warnings(record=True) as caught:  # shown here and on the page (an untrained model)
            warnings.simplefilter("always")
            st = Stylizer.from_pretrained(args.model or DEFAULT_MODEL, device=args.device, half=args.half,
                                          seed=args.seed)
        notes = list(dict.fromkeys(str(w.message) for w in caught))
        for note in notes:
            print(f"dinstyle: warning: {note}", file=sys.stderr)
        loopback = is_loopback(args.host)
        app = create_app(st, max_upload=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                         max_queue=args.max_queue, loopback_only=loopback, load_warnings=notes, quiet=args.quiet)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        if not loopback:
            print(f"dinstyle: warning: listening on {args.host}: anyone who can reach this machine on port {port} "
                  "can use the page and the API (no password, no encryption)", file=sys.stderr)
        print(f"dinstyle: serving http://{shown}:{port}/ (model {st.model_id} on {st.device}); Ctrl+C stops it",
              flush=True)
        try:
            serve(app, sock)
        except KeyboardInterrupt:  # uvicorn has shut down gracefully, then passes Ctrl+C on
            print("dinstyle: stopped", file=sys.stderr)
    finally:
        sock.close()
    return 0
