"""`dinstyle dataset`: stylize a whole photo tree (ImageFolder layouts stay valid) with styles drawn from
a folder, resumably, on this machine or a Ray cluster. The work is ``dinstyle.dataset``'s."""
from __future__ import annotations

import sys

from ..defaults import DEFAULT_MODEL


def register(sub) -> None:
    p = sub.add_parser("dataset", help="stylize a whole dataset tree (Stylized-ImageNet style), resumable",
                       description="Stylize every photo under CONTENT_DIR into OUT_DIR, same relative paths and "
                       "names, each with styles drawn (seeded by its path) from --style-dir. A rerun resumes; "
                       "OUT_DIR/manifest.csv lists every output and every failure. See docs/DATASETS.md.")
    p.add_argument("content", metavar="CONTENT_DIR", help="photo folder (recursive), or a URI pyarrow reads (s3://...)")
    p.add_argument("--style-dir", required=True, metavar="STYLES", help="folder of style images (recursive)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output root (the mirrored tree)")
    p.add_argument("--preset", choices=["stylized-imagenet"],
                   help="stylized-imagenet: one style per photo, alpha 1, original size (options given win)")
    r = p.add_argument_group("recipe (recorded; a rerun into OUT_DIR must keep it)")
    r.add_argument("--styles-per-image", type=int, metavar="K", help="outputs per photo, NAME_style0..K-1 when K > 1 (default 1)")
    r.add_argument("--alpha", metavar="A|LO:HI", help="style strength, or a range sampled per output (default 1)")
    r.add_argument("--preserve-color", type=float, metavar="P", help="probability an output keeps the photo's colours (default 0)")
    size = r.add_mutually_exclusive_group()
    size.add_argument("--size", type=int, metavar="N", help="resize the long side to N (default: original size)")
    size.add_argument("--max-size", type=int, metavar="N", help="shrink to a long side of at most N")
    r.add_argument("--format", metavar="EXT", help="output format (default: each photo's own)")
    r.add_argument("--quality", type=int, metavar="Q", help="JPEG/WebP quality 1..100 (default 95)")
    r.add_argument("--seed", type=int, metavar="S", help="seed of the style, alpha and colour draws (default 0)")
    r.add_argument("--model", default=DEFAULT_MODEL, help="architecture name or model file (default: the bundled model)")
    e = p.add_argument_group("engine (speed only: every engine and worker count gives the same outputs)")
    e.add_argument("--engine", choices=["local", "ray"], default="local", help="local processes (default) or Ray Data")
    e.add_argument("--workers", type=int, metavar="N", help="worker processes / Ray actors (default: one per core)")
    e.add_argument("--threads", type=int, metavar="T", help="torch threads per worker (default 1)")
    e.add_argument("--batch-size", type=int, default=8, metavar="B", help="same-size photos per forward pass (default 8)")
    e.add_argument("--device", default="cpu", help="cpu|cuda|auto (default cpu; cuda gives each Ray actor a GPU)")
    e.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start Ray on this machine)")
    p.add_argument("--retry-failed", action="store_true", help="retry the photos the manifest lists as failed")
    p.add_argument("--overwrite", action="store_true", help="start again: replace the outputs of an earlier run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..dataset import DatasetOptions, parse_alpha, stylize_dataset, with_preset

    explicit = {k: getattr(args, k) for k in ("styles_per_image", "preserve_color", "size", "max_size", "seed")
                if getattr(args, k) is not None}
    if args.alpha is not None:
        explicit["alpha"] = parse_alpha(args.alpha)
    base = DatasetOptions(model=args.model, format=args.format, quality=args.quality, engine=args.engine,
                          workers=args.workers, threads=args.threads, batch_size=args.batch_size, device=args.device,
                          ray_address=args.ray_address, overwrite=args.overwrite, retry_failed=args.retry_failed,
                          progress=not args.quiet)
    summary = stylize_dataset(args.content, args.style_dir, args.output, with_preset(base, args.preset, explicit))
    print(f"dinstyle: {args.output}: {summary.line()}", file=sys.stderr)
    return 1 if summary.failed else 0
