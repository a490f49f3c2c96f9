"""`dinstyle profile`: params and GMACs per architecture, style path vs content path."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("profile", help="params and multiply-accumulates of each architecture (style vs content path)")
    p.add_argument("--model", action="append", metavar="NAME|FILE",
                   help="architecture name or model file (repeatable; default: every registered architecture)")
    p.add_argument("--sizes", default="256,512,1024", help="comma-separated square image sizes (default 256,512,1024)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UsageError
    from ..eval.profile import markdown_table, profile_all
    from ..models import ARCHS, load_model, model_id

    try:
        sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
    if not sizes or min(sizes) < 16:
        raise UsageError("--sizes needs at least one size >= 16")
    models = None
    if args.model:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # untrained weights do not change the counts
            loaded = {m: load_model(m) for m in args.model}
        # an architecture name stays the key; a file becomes "arch:file name"
        models = {m if m in ARCHS else model_id(model): model for m, model in loaded.items()}
    result = profile_all(sizes=sizes, models=models)
    if args.json:
        print(json.dumps(result))
    else:
        for s in sizes:
            print(markdown_table(result, s), end="\n\n")
    return 0
