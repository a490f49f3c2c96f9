"""`dinstyle encode-style`: encode a style once into a reusable style code (.safetensors)."""
from __future__ import annotations

from ..defaults import DEFAULT_MODEL

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("encode-style", help="encode a style image once into a style code file for --style",
                       description="Encode one style (or a blend of several) into the DIN parameters of a model. "
                       "Use the file with 'dinstyle stylize --style FILE.safetensors' (same model only).")
    p.add_argument("style", nargs="+", help="style image(s) or builtin:NAME; several are blended")
    p.add_argument("-o", "--output", required=True, help="output file, .safetensors")
    p.add_argument("--style-weights", metavar="W1,W2,...", help="blend weights of several styles")
    p.add_argument("--style-size", type=int, default=None, metavar="N",
                   help="long side the style is resized to (default: the model's own; larger = smaller strokes)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="architecture name or model file (default: the bundled trained model)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed for untrained models (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--json", action="store_true", help="print the code's metadata as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import DinstyleError, UsageError
    from ..io.outputs import plan_outputs
    from .stylize import parse_style_weights, style_sources

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise UsageError(f"{out}: style codes are written as .safetensors")
    styles = style_sources(args.style)
    if any(s.saved for s in styles):
        raise UsageError("encode-style takes style images (or builtin:NAME), not style codes")
    inputs = [*(s.path for s in styles), *([args.model] if Path(args.model).is_file() else [])]
    reason = plan_outputs([(str(out), None, out)], inputs, args.overwrite)[0]  # never the model or a style
    if reason is not None:
        raise (UsageError if reason.kind == "input" else DinstyleError)(str(reason))
    if args.style_size is not None and args.style_size < 16:
        raise UsageError("--style-size must be >= 16")
    weights = parse_style_weights(args.style_weights, len(args.style))

    from ..api import Stylizer

    st = Stylizer.from_pretrained(args.model, device=args.device, seed=args.seed, half=False)
    code = st.blend_styles(styles, weights, args.style_size)
    code.save(out)
    if args.json:
        print(json.dumps({"output": str(out), **code.meta}))
    else:
        print(f"{out}: {len(code.levels)} DIN levels for {code.meta['model']} "
              f"(style size {args.style_size or st.style_size}, {', '.join(args.style)})")
    return 0
