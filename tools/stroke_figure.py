"""The README's stroke-size figure: one photo at three stroke sizes, and the same painting at two resolutions.

    python tools/stroke_figure.py --photo ../shared/data/content/PHOTO.jpg -o docs/images/strokes.jpg

Row 1: stroke size 0.5, 1 and 2 on the photo at its own size. Row 2: a crop of the same place with the photo
at 1x and at 2x its size (enlarged first), stroke size 1: the strokes keep their size relative to the picture.
"""
from __future__ import annotations

import argparse

from PIL import Image, ImageDraw


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", required=True)
    p.add_argument("--style", default="builtin:irises")
    p.add_argument("--model", default="default")
    p.add_argument("-o", "--output", default="docs/images/strokes.jpg")
    p.add_argument("--width", type=int, default=420, help="width of each panel")
    args = p.parse_args(argv)

    from dinstyle import Stylizer

    st = Stylizer.from_pretrained(args.model, device="cpu")
    photo = Image.open(args.photo).convert("RGB")
    code = st.encode_style(args.style)
    panels = [(f"stroke size {s:g}", st.stylize(photo, code, stroke_size=s)) for s in (0.5, 1.0, 2.0)]
    big = photo.resize((2 * photo.width, 2 * photo.height), Image.LANCZOS)
    same = st.stylize(big, code).resize(photo.size, Image.LANCZOS)
    panels += [(f"{photo.width}x{photo.height}, size 1", panels[1][1]),
               (f"{big.width}x{big.height}, size 1 (shrunk to show)", same), ("photo", photo)]
    w = args.width
    h = round(w * photo.height / photo.width)
    pad, label = 6, 18
    canvas = Image.new("RGB", (pad + 3 * (w + pad), pad + 2 * (h + label + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (name, im) in enumerate(panels):
        x, y = pad + (i % 3) * (w + pad), pad + (i // 3) * (h + label + pad)
        draw.text((x, y), name, fill="black")
        canvas.paste(im.resize((w, h), Image.LANCZOS), (x, y + label))
    canvas.save(args.output, quality=88)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
