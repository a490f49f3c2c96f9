"""`dinstyle styles`: list the built-in styles (use them as --style builtin:NAME)."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("styles", help="list the built-in styles (--style builtin:NAME)")
    p.add_argument("--json", action="store_true", help="one JSON object per style")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io.builtin_styles import LICENCE, STYLES

    if args.json:
        for s in STYLES.values():
            print(json.dumps({"name": s.name, "title": s.title, "artist": s.artist, "year": s.year,
                              "url": s.url, "licence": LICENCE, "path": str(s.path)}))
        return 0
    width = max(len(n) for n in STYLES)
    for s in STYLES.values():
        print(f"{s.name:<{width}}  {s.title} ({s.year}), {s.artist}")
    print(f"\nuse as: dinstyle stylize PHOTO --style builtin:NAME   ({LICENCE})")
    return 0
