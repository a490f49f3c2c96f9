"""`dinstyle video`: restyle a video file (style encoded once, audio kept, optional temporal smoothing)."""
from __future__ import annotations

from ..defaults import DEFAULT_MODEL, DITHER

import json
from pathlib import Path


def register(sub) -> None:
    from .stylize import pixel_count

    p = sub.add_parser("video", help="restyle a video (mp4, webm, mov, mkv, gif); audio is kept")
    p.add_argument("input", help="input video")
    p.add_argument("-o", "--output", help="output video; its extension picks the format "
                   "(.mp4/.mov/.mkv: H.264, .webm: VP9, .gif; default: INPUT_stylized.EXT, or .mp4)")
    p.add_argument("--style", required=True, action="append",
                   help="style image, builtin:NAME or saved style code (.safetensors); repeat to blend styles")
    p.add_argument("--style-weights", metavar="W1,W2,...", help="blend weights of repeated --style")
    p.add_argument("--model", default=DEFAULT_MODEL, help="architecture name or model file")
    p.add_argument("--alpha", type=float, default=1.0, help="style strength 0..1; 0 = the video itself (default 1)")
    p.add_argument("--no-restore", dest="restore", action="store_false",
                   help="alpha < 1 without adding back the photo's detail: the model's own alpha only")
    p.add_argument("--temporal", type=float, default=0.5, metavar="T",
                   help="temporal stability 0..1: 0 = independent frames (default 0.5)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", type=int, help="resize so the long side is N pixels")
    size.add_argument("--max-size", type=int, help="shrink so the long side is at most N pixels")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start at S seconds")
    p.add_argument("--duration", type=float, metavar="S", help="stylize only S seconds")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="frames per forward pass (default: 1 on CPU, 8 on GPU)")
    p.add_argument("--style-size", type=int, help="long side of the style image when encoded (default: the model's own)")
    p.add_argument("--stroke-size", type=float, default=1.0, metavar="S", help="stroke size: 1 = the model's look at its reference size (512 px) whatever the video's size; "
                        "2 = strokes twice as large")
    p.add_argument("--preserve-color", action="store_true", help="keep the video's colours (luminance transfer)")
    p.add_argument("--dither", type=float, default=DITHER, metavar="SIGMA",
                   help=f"fixed noise added to every frame before the network (the same each frame: no flicker), so "
                        f"flat areas take even texture (default {DITHER}; 0 = off)")
    p.add_argument("--cut-threshold", type=float, default=None, metavar="D",
                   help="mean difference of consecutive 32x32 thumbnails (0..1) above which a frame starts a new "
                        "scene: smoothing restarts there (0 = every change, 1 = never; default 0.1)")
    p.add_argument("--max-pixels-untiled", type=pixel_count, default=None, metavar="P",
                   help="stylize at most P pixels of a frame at once: larger frames are tiled (default: tile only when "
                        "the memory requires it; 'dinstyle info' shows the limit)")
    p.add_argument("--max-pixels", type=pixel_count, default=None, metavar="P",
                   help="refuse frames above P pixels (default 150e6)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import Stylizer
    from ..errors import UsageError
    from ..io.images import DEFAULT_MAX_PIXELS
    from ..io.videofiles import FORMATS, check_paths
    from ..runtime.request import DEFAULT_MAX_PIXELS_UNTILED, StyleOptions
    from ..video.temporal import CUT_THRESHOLD, check_cut_threshold, check_temporal
    from .stylize import parse_style_weights, style_sources

    src = Path(args.input)
    ext = src.suffix if src.suffix.lower() in FORMATS else ".mp4"
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_stylized{ext}")
    check_temporal(args.temporal)
    cut_threshold = check_cut_threshold(CUT_THRESHOLD if args.cut_threshold is None else args.cut_threshold)
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    weights = parse_style_weights(args.style_weights, len(args.style))
    opts = StyleOptions(alpha=args.alpha, restore=args.restore, style_size=args.style_size, style_weights=weights,
                        preserve_color=args.preserve_color, stroke_size=args.stroke_size, dither=args.dither,
                        max_pixels_untiled=args.max_pixels_untiled or DEFAULT_MAX_PIXELS_UNTILED)
    if not src.exists():  # a missing input is a usage error, as a missing style is
        raise UsageError(f"{src}: no such file")
    styles = style_sources(args.style)
    inputs = [*(s.path for s in styles if s.path), *([args.model] if Path(args.model).is_file() else [])]
    check_paths(src, out, args.overwrite, inputs)  # before the model loads: fail fast
    st = Stylizer.from_pretrained(args.model, device=args.device)
    summary = st.stylize_video(
        src, out, styles if len(styles) > 1 else styles[0], size=args.size, max_size=args.max_size,
        start=args.start, duration=args.duration, overwrite=args.overwrite, progress=not args.quiet,
        temporal=args.temporal, batch_size=args.batch_size, inputs=inputs, options=opts,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, cut_threshold=cut_threshold)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['output']}: {summary['frames']} frames {summary['width']}x{summary['height']} "
              f"@ {summary['fps']:g} fps, audio {summary['audio']}, {summary['frames_per_second']} frames/s")
    return 0
