"""`dinstyle stylize` (minimal; the full version adds batches, controls, tiling and --json)."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("stylize", help="restyle images with a style image")
    p.add_argument("content", nargs="+", help="content image(s)")
    p.add_argument("--style", required=True, help="style image")
    p.add_argument("-o", "--output", help="output file")
    p.add_argument("--model", default="din-mobilenet", help="architecture name or model file")
    p.add_argument("--alpha", type=float, default=1.0, help="style strength 0..1")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import Stylizer
    from ..errors import DinstyleError
    from ..imageio import save_image

    content = Path(args.content[0])
    out = Path(args.output) if args.output else content.with_name(f"{content.stem}_stylized.png")
    if out.exists() and not args.overwrite:
        raise DinstyleError(f"{out}: exists (use --overwrite to replace it)")
    st = Stylizer.from_pretrained(args.model, device=args.device)
    save_image(st.stylize(str(content), args.style, alpha=args.alpha), out)
    print(out)
    return 0
