"""``python -m dinstyle.lite --model-dir DIR --style STYLE CONTENT [CONTENT ...] -o OUT``: no torch needed.

Exit codes as dinstyle's: 0 all written, 1 some images failed (the others are written), 2 usage errors
(bad options, a missing style or content file; a batch still writes the contents that exist)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..defaults import check_alpha, check_stroke_size
from ..errors import DinstyleError, UsageError

PROG = "python -m dinstyle.lite"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        print(f"{PROG}: error: {message} (see '{PROG} --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Stylize images with an exported dinstyle model (onnxruntime; no torch).")
    p.add_argument("content", nargs="+", help="content image(s)")
    p.add_argument("--model-dir", required=True, help="directory made by 'dinstyle export onnx'")
    p.add_argument("--style", required=True, help="style image, or a style code .safetensors file")
    p.add_argument("-o", "--output", help="output image (one content) or directory (several); "
                                          "default: CONTENT_stylized.png next to each content")
    p.add_argument("--alpha", type=float, default=1.0, help="style strength 0..1; 0 = the photo itself (default 1)")
    p.add_argument("--no-restore", dest="restore", action="store_false",
                   help="alpha < 1 without adding back the photo's detail: the model's own alpha only")
    p.add_argument("--stroke-size", type=float, default=1.0, metavar="S",
                   help="stroke size: 1 = the model's look at its reference size on a photo of any size; 2 = twice "
                        "as large (as dinstyle stylize)")
    p.add_argument("--style-size", type=int, default=None,
                   help="scale the style image's longer side to this (default: the manifest's; 0 = as is)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    p.add_argument("--int8", action="store_true",
                   help="use the int8 content graph (made by 'dinstyle export onnx --int8')")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return p


def _outputs(contents: list[Path], output: str | None) -> list[Path]:
    if output is None:
        return [c.with_name(f"{c.stem}_stylized.png") for c in contents]
    out = Path(output)
    if len(contents) == 1 and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: with several contents, -o must be a directory")
    return [out / f"{c.stem}.png" for c in contents]


def _refusals(args, contents: list[Path], outputs: list[Path]) -> list[str | None]:
    """Per content, why it is not run, or None. A missing content is a usage error (exit 2, as a missing
    style is); outputs follow dinstyle's one rule (``dinstyle.io.outputs``): never an input (contents, the
    style, the model's files), never one output for two contents, never an existing file without --overwrite;
    decided before anything is written."""
    from ..io.outputs import plan_outputs

    model_dir = Path(args.model_dir)
    model_files = [f for f in model_dir.iterdir() if f.is_file()] if model_dir.is_dir() else []
    refused = plan_outputs([(str(c), c, o) for c, o in zip(contents, outputs)], [args.style, *model_files],
                           args.overwrite)
    return [f"{c}: no such file" if not c.exists() else r for c, r in zip(contents, refused)]


def _load(args):
    """The model (its int8 content graph with --int8) and the style's code."""
    from .manifest import read_manifest
    from .runtime import LiteModel

    content_file = None
    if args.int8:  # read the manifest first: each LiteModel opens two onnxruntime sessions
        manifest = read_manifest(args.model_dir)
        if "int8" not in manifest:
            raise UsageError(f"{args.model_dir}: has no int8 graph (export with --int8)")
        content_file = manifest["int8"]["file"]
    model = LiteModel(args.model_dir, threads=args.threads, content_file=content_file)
    return model, model.code_for(args.style, args.style_size)


def _stylize_one(model, code, content: Path, out: Path, args) -> None:
    from .images import save_rgb

    t0 = time.perf_counter()
    image = model.stylize(content, code, args.alpha, restore=args.restore, stroke_size=args.stroke_size)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DinstyleError(f"{out}: cannot create its folder ({e.strerror or e})") from None
    save_rgb(image, out)
    print(f"{out}  ({(time.perf_counter() - t0) * 1000:.0f} ms)")


def run(args: argparse.Namespace) -> int:
    check_alpha(args.alpha)
    check_stroke_size(args.stroke_size)  # before the model loads
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1")
    if not Path(args.style).exists():
        raise UsageError(f"{args.style}: no such file")
    contents = [Path(c) for c in args.content]
    outputs = _outputs(contents, args.output)
    refused = _refusals(args, contents, outputs)
    missing = any(not c.exists() for c in contents)
    if len(contents) == 1 and refused[0]:
        raise (UsageError if missing else DinstyleError)(refused[0])
    for reason in filter(None, refused):
        print(f"{PROG}: skipped {reason}", file=sys.stderr)  # the reason starts with the content
    failed = sum(r is not None for r in refused)
    if failed < len(contents):
        model, code = _load(args)
    for content, out, reason in zip(contents, outputs, refused):
        if reason:
            continue
        try:
            _stylize_one(model, code, content, out, args)
        except DinstyleError as e:
            if len(contents) == 1:
                raise
            failed += 1
            print(f"{PROG}: skipped {content}: {e}", file=sys.stderr)
    if failed:  # a count only: each was reported when it happened
        print(f"{PROG}: {failed} of {len(contents)} images failed", file=sys.stderr)
    return 2 if missing else 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    from ..io.atomic import sigterm_as_interrupt  # torch-free

    args = build_parser().parse_args(argv)
    try:
        with sigterm_as_interrupt():
            return run(args)
    except DinstyleError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: one line for users, the traceback on request
        if os.environ.get("DINSTYLE_DEBUG"):
            raise
        first = (str(e).splitlines() or [""])[0][:200]
        print(f"{PROG}: error: internal error: {type(e).__name__}: {first} (set DINSTYLE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
