"""`dinstyle stylize`: restyle images (files, folders, globs, stdin) with one or more styles.

Exit codes: 0 all written, 1 some items failed (the others are still written), 2 usage errors: bad
options, a style/mask/stroke-map file that cannot be used (nothing could succeed), or a named content
input that does not exist (reported like any bad item; the others are still written, as grep does).
"""
from __future__ import annotations

from ..defaults import DEFAULT_MODEL, DITHER

import argparse
import json
import math
import sys
import time
from pathlib import Path

from ..errors import DinstyleError, UsageError


def pixel_count(text: str) -> int:
    """argparse type of --max-pixels / --max-pixels-untiled: a finite number of pixels, at least 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 1):
        raise argparse.ArgumentTypeError(f"expected a number of pixels such as 8e6, got {text!r}")
    return int(value)


def register(sub) -> None:
    p = sub.add_parser("stylize", help="restyle images with a style image, built-in style or saved style code",
                       description="Restyle images. Outputs keep the content's full size unless --size/--max-size.")
    p.add_argument("content", nargs="+", help="content images, folders (recursive), globs, or - for stdin")
    p.add_argument("--style", action="append", required=True, metavar="STYLE",
                   help="style image, builtin:NAME ('dinstyle styles') or saved code .safetensors; repeatable")
    p.add_argument("-o", "--output", help="output file, folder, or - for stdout (default: NAME_stylized.EXT "
                   "next to each input)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="architecture name or model file (default: the bundled trained model)")
    g = p.add_argument_group("controls")
    g.add_argument("--alpha", type=float, default=1.0, help="style strength 0..1; 0 = the photo itself (default 1)")
    g.add_argument("--no-restore", dest="restore", action="store_false",
                   help="alpha < 1 without adding back the photo's detail: the model's own alpha only")
    g.add_argument("--style-weights", metavar="W1,W2,...", help="blend weights of several --style (DIN-parameter space)")
    g.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer)")
    g.add_argument("--mask", metavar="FILE", help="label image: its distinct values, ascending, pick the styles in order")
    g.add_argument("--style-size", type=int, metavar="N", help="long side the style is resized to before encoding "
                   "(default: the model's training size, 256 for the bundled model; larger = smaller strokes)")
    g.add_argument("--stroke-size", type=float, default=1.0, metavar="S",
                   help="stroke size: 1 (default) = the model's look at its reference size (512 px) on a photo of "
                        "any size; 2 = strokes twice as large, 0.5 = half")
    g.add_argument("--stroke-map", metavar="FILE|auto",
                   help="grayscale map: black = small strokes (x0.5), white = large (x2); auto = from the photo "
                        "(large strokes in flat areas, small on detail)")
    g.add_argument("--dither", type=float, default=DITHER, metavar="SIGMA",
                   help=f"fixed noise added to the photo before the network, so skies and flat graphics take even "
                        f"texture instead of streaks (default {DITHER}; 0 = off)")
    g.add_argument("--seed", type=int, default=0, help="seed for everything random (untrained models) (default 0)")
    s = p.add_argument_group("size and memory")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--size", type=int, metavar="N", help="resize so the long side is N pixels")
    size.add_argument("--max-size", type=int, metavar="N", help="shrink so the long side is at most N pixels")
    s.add_argument("--tile", type=int, metavar="N", help="always process in N-pixel tiles (whole-image statistics)")
    s.add_argument("--max-pixels-untiled", type=pixel_count, default=None, metavar="P",
                   help="process at most P pixels at once: larger images are tiled (default: tile only when the "
                        "memory requires it, from the free memory and the model's measured bytes per pixel; "
                        "'dinstyle info' shows the limit)")
    s.add_argument("--max-pixels", type=pixel_count, default=None, metavar="P",
                   help="refuse inputs above P pixels (decompression-bomb guard; default 150e6)")
    o = p.add_argument_group("output and device")
    o.add_argument("--format", metavar="EXT", help="output format for default names / -o FOLDER / stdout (png, jpg, ...)")
    o.add_argument("--overwrite", action="store_true", help="replace existing outputs (inputs are never replaced)")
    o.add_argument("--json", action="store_true", help="one JSON object per output on stdout")
    o.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    half = o.add_mutually_exclusive_group()
    half.add_argument("--half", dest="half", action="store_true", default=None, help="float16 (default on CUDA)")
    half.add_argument("--no-half", dest="half", action="store_false", help="float32 everywhere")
    o.add_argument("--batch-size", type=int, default=1, metavar="N", help="same-size images per forward pass")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_style_weights(text: str | None, n: int) -> list[float] | None:
    """``--style-weights`` for ``n`` styles (shared by stylize, encode-style and video)."""
    if text is None:
        return None
    try:
        w = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--style-weights must be comma-separated numbers, got {text!r}") from None
    if len(w) != n:
        raise UsageError(f"--style-weights has {len(w)} weights for {n} --style")
    from ..models.stylecode import normalized_weights

    try:
        normalized_weights(w, n)  # the rule lives with blending (finite, non-negative, not all zero)
    except ValueError as e:
        raise UsageError(f"--style-weights {text!r}: {e}") from None
    return w


def _options(args, weights):
    """The flags as one ``StyleOptions``: every control is checked there, once (the API's own rule)."""
    from ..io.images import DEFAULT_MAX_PIXELS
    from ..runtime.request import DEFAULT_MAX_PIXELS_UNTILED, StyleOptions

    return StyleOptions(alpha=args.alpha, restore=args.restore, style_weights=weights, style_size=args.style_size,
                        preserve_color=args.preserve_color, mask=args.mask, stroke_size=args.stroke_size,
                        stroke_map=args.stroke_map, dither=args.dither, tile=args.tile, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
                        max_pixels_untiled=args.max_pixels_untiled or DEFAULT_MAX_PIXELS_UNTILED)


def _check_args(args) -> None:
    """What only the command line has: sizes, batches and stdout."""
    # when the image goes to stdout, nothing else may: no --json, no other item (and its name)
    to_stdout = args.output == "-" or (args.output is None and "-" in args.content)
    checks = [((args.size or 1) >= 1 and (args.max_size or 1) >= 1, "--size/--max-size must be positive"),
              (args.batch_size >= 1, "--batch-size must be >= 1"),
              (not (args.json and to_stdout), "--json and the image both need stdout (-o - or stdin without -o): "
               "write the image to a file with -o FILE"),
              # (-o - with several inputs: assign_outputs, which also sees what folders and globs expand to)
              (not (args.output is None and "-" in args.content and len(args.content) > 1),
               "stdin (-) without -o writes the image to stdout, which carries that image only: give - alone, "
               "or -o FOLDER"),
              (args.content.count("-") <= 1, "stdin (-) can be read only once")]
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)


def style_sources(specs: list[str]) -> list:
    """Each --style classified once (shared by stylize, encode-style and video): missing files and unknown
    built-ins are usage errors (nothing could succeed); the API then takes these sources as they are."""
    from ..runtime.sources import style_source

    try:
        return [style_source(s) for s in specs]
    except DinstyleError as e:
        raise UsageError(str(e)) from None


def _style_sources(args) -> list:
    from ..runtime.sources import check_resizable

    sources = style_sources(args.style)
    check_resizable(sources, bool(args.style_size))
    return sources


def _resize(im, transparency, size: int | None, max_size: int | None):
    from PIL import Image

    long_side = max(im.size)
    target = size or (max_size if max_size and long_side > max_size else None)
    if not target or target == long_side:
        return im, transparency
    s = target / long_side
    wh = (max(1, round(im.width * s)), max(1, round(im.height * s)))
    return im.resize(wh, Image.LANCZOS), transparency.resize(wh, Image.LANCZOS) if transparency is not None else None


def run(args) -> int:
    from ..io.images import decode_image
    from .batch import assign_outputs, expand_inputs

    _check_args(args)
    weights = parse_style_weights(args.style_weights, len(args.style))
    opts = _options(args, weights)
    styles = _style_sources(args)
    try:  # maps shared by every item: unusable means nothing can succeed (checked before the model loads)
        for path in (args.mask, args.stroke_map):
            if path and path != "auto":
                decode_image(path, opts.max_pixels)
    except DinstyleError as e:
        raise UsageError(str(e)) from None
    out_dir = Path(args.output).resolve() if args.output and args.output != "-" else None
    items = expand_inputs(args.content, exclude=out_dir)
    inputs = [s.path for s in styles if s.path is not None]  # no output may replace these
    inputs += [f for f in (args.mask, args.stroke_map, args.model) if f and f != "auto" and Path(f).is_file()]
    assign_outputs(items, args.output, args.format, args.overwrite,
                   any_folder=any(Path(c).is_dir() for c in args.content), inputs=inputs)

    from ..api import Stylizer

    st = None
    if any(it.error is None for it in items):  # nothing to do: no model to load
        st = Stylizer.from_pretrained(args.model, device=args.device, half=args.half, seed=args.seed)
        # an unreadable style, a code for another model, a style the model encodes to NaN: usage errors,
        # found before the first image (the codes are cached for the batch)
        st.prepare_styles(styles, opts)
    style_label = args.style[0] if len(args.style) == 1 else args.style
    return _process(items, st, args, styles, opts, style_label)


def _process(items, st, args, styles, opts, style_label) -> int:
    return _Batch(items, st, args, styles, opts, style_label).run()


class _Batch:
    """Reads each item, stylizes same-size runs of ``--batch-size`` together, writes each result; a failed
    item is reported (and counted) and the rest go on."""

    def __init__(self, items, st, args, styles, opts, style_label):
        from tqdm import tqdm

        from ..io.images import output_format

        self.items, self.st, self.args = items, st, args
        self.styles, self.opts, self.style_label = styles, opts, style_label
        self.stdout_format = output_format(f"x.{args.format.lstrip('.')}") if args.format else "PNG"
        self.failures = [it for it in items if it.error]
        self.bar = tqdm(total=len(items), unit="img", file=sys.stderr, disable=args.quiet or len(items) < 2 or None,
                        dynamic_ncols=True)
        self.pending: list = []  # (item, rgb, transparency, t0), all of one image size

    def say(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)  # keeps the bar intact

    def fail(self, it, msg: str) -> None:
        it.error = msg
        self.failures.append(it)
        self.say(f"dinstyle: error: {msg}")
        if self.args.json:
            print(json.dumps({"input": it.label, "ok": False, "error": msg}), flush=True)
        self.bar.update(1)

    def run(self) -> int:
        for it in self.failures:  # found while expanding the inputs
            self.say(f"dinstyle: error: {it.error}")
            self.bar.update(1)
        for it in [it for it in self.items if not it.error]:
            self.read(it)
        self.flush()
        self.bar.close()
        if self.failures and len(self.items) > 1:  # a count only: each failure was reported when it happened
            print(f"dinstyle: {len(self.failures)} of {len(self.items)} failed (each reported above)", file=sys.stderr)
        return 2 if any(it.usage for it in self.failures) else 1 if self.failures else 0

    def read(self, it) -> None:
        from ..io.images import open_image

        t0 = time.perf_counter()
        try:
            src = sys.stdin.buffer.read() if it.path is None else it.path
            rgb, transparency = open_image(src, self.opts.max_pixels, name=it.label)
            rgb, transparency = _resize(rgb, transparency, self.args.size, self.args.max_size)
        except DinstyleError as e:
            return self.fail(it, str(e))
        if self.pending and self.pending[0][1].size != rgb.size:  # a batch holds one image size
            self.flush()
        self.pending.append((it, rgb, transparency, t0))
        if len(self.pending) >= self.args.batch_size:
            self.flush()

    def flush(self) -> None:
        import torch

        from ..io.images import pil_to_tensor

        if not self.pending:
            return
        group, self.pending = self.pending, []
        try:
            x = torch.cat([pil_to_tensor(rgb) for _, rgb, _, _ in group])
            y = self.st.stylize(x, self.styles, self.opts)
        except UsageError:
            raise
        except DinstyleError as e:
            for it, *_ in group:
                self.fail(it, str(e) if str(e).startswith(it.label) else f"{it.label}: {e}")
            return
        for i, (it, _, transparency, t0) in enumerate(group):
            self.write(it, y[i], transparency, t0)

    def write(self, it, y, transparency, t0: float) -> None:
        from ..io.images import save_image, tensor_to_pil

        try:
            im = tensor_to_pil(y)
            if transparency is not None:
                im.putalpha(transparency)
            if it.output != "-":
                _make_parent(it.output)
            save_image(im, it.output, overwrite=self.args.overwrite,
                       format=self.stdout_format if it.output == "-" else None)
        except DinstyleError as e:
            return self.fail(it, str(e))
        if self.args.json:
            print(json.dumps({"input": it.label, "output": str(it.output), "ok": True, "size": list(im.size),
                              "style": self.style_label, "model": self.st.model_id,
                              "seconds": round(time.perf_counter() - t0, 3), "device": str(self.st.device)}), flush=True)
        elif it.output != "-":
            self.bar.write(str(it.output), file=sys.stdout)
        self.bar.update(1)


def _make_parent(output) -> None:
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DinstyleError(f"{output}: a part of {Path(output).parent} is a file, not a folder") from None
    except OSError as e:
        raise DinstyleError(f"{output}: cannot create its folder ({e.strerror or e})") from None
