"""`dinstyle check-data DIR`: report the image files training would convert or skip."""
from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser("check-data", help="report unreadable, truncated, CMYK, 16-bit, alpha, gray, tiny, huge images")
    p.add_argument("folder", metavar="DIR", help="image folder (searched recursively)")
    p.add_argument("--size", type=int, default=256, help="crop size: images with a shorter side are 'tiny' (default 256)")
    p.add_argument("--max-pixels", type=int, default=100_000_000, help="images with more pixels are 'huge' (default 1e8)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel processes (default: CPUs, max 8)")
    p.add_argument("--show", type=int, default=5, help="example files listed per kind (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every file listed")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..errors import UsageError
    from ..train.check import check_folder, format_report

    if args.size < 1 or args.max_pixels < 1 or args.workers < 0 or args.show < 0:
        raise UsageError("--size, --max-pixels must be >= 1; --workers, --show >= 0")
    report = check_folder(args.folder, args.size, args.max_pixels, args.workers)
    print(json.dumps(report) if args.json else format_report(report, args.show))
    return 0  # a report, not a verdict: problems are listed, not failures
