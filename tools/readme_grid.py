"""The output grid at the top of the README: example photos x built-in styles, made by the bundled model.

    python tools/readme_grid.py -o docs/images/grid.jpg

Each cell is a full ``Stylizer.stylize`` of the photo at its own size (then shrunk for the page).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ["examples/content.jpg", "examples/mountain.jpg", "examples/pier.jpg"]
STYLES = ["irises", "grande-jatte", "moonrise", "tenjin-scroll"]
CELL = 240  # cell height in the grid, pixels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="docs/images/grid.jpg")
    p.add_argument("--model", default="default", help="model name or file (default: the bundled model)")
    p.add_argument("--styles", default=",".join(STYLES), help="comma-separated built-in style names")
    args = p.parse_args(argv)

    from dinstyle import Stylizer
    from dinstyle.io.builtin_styles import builtin_style

    st = Stylizer.from_pretrained(args.model, device="cpu")
    styles = args.styles.split(",")
    photos = [Image.open(ROOT / f).convert("RGB") for f in PHOTOS]
    widths = [round(CELL * im.width / im.height) for im in photos]
    col_w = max(widths)
    pad, top = 6, CELL
    canvas = Image.new("RGB", (pad + (col_w + pad) * (1 + len(styles)), top + pad + (CELL + pad) * len(photos)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(styles):
        s = Image.open(builtin_style(f"builtin:{name}").path).convert("RGB")
        s.thumbnail((col_w, CELL - 14))
        x = pad + (col_w + pad) * (j + 1)
        canvas.paste(s, (x + (col_w - s.width) // 2, 0))
        draw.text((x, CELL - 12), name, fill=(60, 60, 60))
    for i, (path, im) in enumerate(zip(PHOTOS, photos)):
        y = top + pad + (CELL + pad) * i
        canvas.paste(im.resize((widths[i], CELL), Image.LANCZOS), (pad, y))
        for j, name in enumerate(styles):
            out = st.stylize(ROOT / path, f"builtin:{name}")
            out = out if isinstance(out, Image.Image) else Image.fromarray(out)
            canvas.paste(out.resize((widths[i], CELL), Image.LANCZOS), (pad + (col_w + pad) * (j + 1), y))
            print(f"{path} x {name}", file=sys.stderr)
    save_figure(canvas, args.output)
    return 0


def save_figure(canvas: Image.Image, path: str) -> None:
    """Write a figure for the docs (parent folders made) and print where."""
    out_path = Path(path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_path, quality=88)
    print(out_path)


if __name__ == "__main__":
    raise SystemExit(main())
