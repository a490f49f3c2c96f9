"""The strength control at a glance: one photo and style, alpha from 0 to 1, one row per model.

    python tools/alpha_sweep.py -o docs/images/alpha.jpg --model default --model before=OLD.safetensors

Each cell is a full ``Stylizer.stylize`` of the photo at ``--max-size`` (then shrunk for the page); the first
column is the photo itself, so alpha=0 can be compared with it. ``--restore both`` draws each model twice:
with dinstyle's restore (the default) and without it (``--no-restore``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw
from readme_grid import save_figure  # tools/ is on sys.path when a tool runs as a script

ROOT = Path(__file__).resolve().parents[1]
ALPHAS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
CELL = 150  # cell height in the grid, pixels
LABEL = 16  # the "alpha A" line under each row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="docs/images/alpha.jpg")
    p.add_argument("--model", action="append", help="NAME, FILE or LABEL=FILE (repeatable; default: the bundled model)")
    p.add_argument("--content", default=str(ROOT / "examples/content.jpg"))
    p.add_argument("--style", default="builtin:irises")
    p.add_argument("--alphas", default=",".join(str(a) for a in ALPHAS))
    p.add_argument("--max-size", type=int, default=512)
    p.add_argument("--restore", choices=("on", "off", "both"), default="on",
                   help="alpha's restore: on (the default of every dinstyle command), off (--no-restore), both rows")
    args = p.parse_args(argv)

    from dinstyle import Stylizer

    alphas = [float(a) for a in args.alphas.split(",")]
    photo = Image.open(args.content).convert("RGB")
    photo.thumbnail((args.max_size, args.max_size))
    width, pad, head = round(CELL * photo.width / photo.height), 6, 16
    restores = {"on": [True], "off": [False], "both": [True, False]}[args.restore]
    models = [(spec, r) for spec in args.model or ["default"] for r in restores]
    canvas = Image.new("RGB", (pad + (width + pad) * (1 + len(alphas)), head + (CELL + LABEL + head) * len(models)),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for i, (spec, restore) in enumerate(models):
        label, _, src = spec.rpartition("=")
        st = Stylizer.from_pretrained(src, device="cpu")
        code = st.encode_style(args.style)
        y = head + (CELL + LABEL + head) * i
        mode = "" if args.restore == "on" else (", restore" if restore else ", --no-restore")
        draw.text((pad, y - 14), f"{label or src}{mode}: {Path(args.content).name} x {args.style}", fill=(40, 40, 40))
        canvas.paste(photo.resize((width, CELL), Image.LANCZOS), (pad, y))
        for j, a in enumerate(alphas):
            out = st.stylize(photo, code, alpha=a, restore=restore)
            x = pad + (width + pad) * (j + 1)
            canvas.paste(out.resize((width, CELL), Image.LANCZOS), (x, y))
            draw.text((x + 2, y + CELL + 1), f"alpha {a:g}", fill=(60, 60, 60))
        print(f"{spec}: {len(alphas)} alphas", file=sys.stderr)
    save_figure(canvas, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
