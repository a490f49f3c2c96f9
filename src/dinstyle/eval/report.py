"""What `dinstyle eval` shows: a Markdown table, a PNG contact sheet and an HTML page."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from ..io.atomic import atomic_write
from ..io.images import save_image, tensor_to_pil

# (key, header, number format) of the table; the judge columns appear only when they were computed.
COLUMNS = [("ssim", "SSIM ↑", "{:.3f}"), ("style_loss", "style loss ↓", "{:.4g}"),
           ("color_swd", "colour SWD ↓", "{:.2f}"), ("judge_top1", "judge top-1 ↑", "{:.2f}"),
           ("judge_mean_rank", "judge rank ↓", "{:.2f}"), ("texture_top1", "texture top-1 ↑", "{:.2f}"),
           ("texture_mean_rank", "texture rank ↓", "{:.2f}"), ("vggstats_top1", "VGG-stats top-1 ↑", "{:.2f}"),
           ("vggstats_mean_rank", "VGG-stats rank ↓", "{:.2f}"),
           ("vggtexture_top1", "VGG-texture top-1 ↑", "{:.2f}"),
           ("vggtexture_mean_rank", "VGG-texture rank ↓", "{:.2f}"), ("alpha0_ssim", "α=0 SSIM ↑", "{:.3f}"),
           ("alpha0_l1", "α=0 L1 ↓", "{:.4f}"), ("sec_per_image", "s/image", "{:.3f}")]


def markdown_table(results: Sequence[dict]) -> str:
    """One row per method, plus a line giving the set-up and the chance levels of the judges."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in results)]
    lines = ["| model | " + " | ".join(h for _, h, _ in cols) + " |", "|---|" + "---:|" * len(cols)]
    for r in results:
        cells = [f.format(r[k]) if r.get(k) is not None else "–" for k, _, f in cols]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    r0 = results[0]
    split = ", held-out split" if r0.get("held_out") else ""
    note = (f"\n{r0['pairs']} pairs, {r0['styles']} styles, {r0['size']} px, seed {r0['seed']}{split}, "
            f"style loss and VGG-stats judges under {r0['metric_net']}, device {r0['device']}")
    if "chance_mean_rank" in r0:
        note += f"; judge chance: top-1 {r0['chance_top1']:.2f}, mean rank {r0['chance_mean_rank']:.1f}"
    return "\n".join(lines) + note


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width: int) -> None:
    while text and draw.textlength(text) > width - 4:  # default bitmap font; trim long names
        text = text[:-1]
    draw.text(xy, text, fill=(20, 20, 20))


def contact_sheet(data, outputs: dict[str, list], cell: int = 192, pad: int = 4, header: int = 18) -> Image.Image:
    """Rows: content | style | each method's output, one row per pair, labelled columns."""
    labels = ["content", "style", *outputs]
    w = len(labels) * (cell + pad) + pad
    h = header + len(data.pairs) * (cell + pad) + pad
    sheet = Image.new("RGB", (w, h), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(labels):
        _label(draw, (pad + j * (cell + pad) + 2, 3), name, cell)
    for i, p in enumerate(data.pairs):
        row = [p.content_image, data.style_images[p.style_index], *(o[i] for o in outputs.values())]
        for j, x in enumerate(row):
            sheet.paste(tensor_to_pil(x).resize((cell, cell), Image.LANCZOS),
                        (pad + j * (cell + pad), header + pad + i * (cell + pad)))
    return sheet


def _html_table(results: Sequence[dict]) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r for r in results)]
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in cols)
    rows = "".join("<tr><td>" + html.escape(r["model"]) + "</td>" + "".join(
        f"<td>{f.format(r[k]) if r.get(k) is not None else '–'}</td>" for k, _, f in cols) + "</tr>" for r in results)
    return f"<table><tr><th>model</th>{head}</tr>{rows}</table>"


def write_report(folder: str | Path, results: Sequence[dict], data, outputs: dict[str, list],
                 overwrite: bool = False) -> list[Path]:
    """``contact_sheet.png`` + ``index.html`` in ``folder``; refuses to replace them unless ``overwrite``."""
    from ..errors import DinstyleError

    folder = Path(folder)
    sheet_path, page_path = folder / "contact_sheet.png", folder / "index.html"
    if not overwrite and (sheet_path.exists() or page_path.exists()):
        raise DinstyleError(f"{folder}: already holds a report (use --overwrite to replace it)")
    folder.mkdir(parents=True, exist_ok=True)
    save_image(contact_sheet(data, outputs), sheet_path)
    r0 = results[0]
    split = ", held-out split" if r0.get("held_out") else ""
    pairs = "".join(f"<li>{html.escape(p.content.name)} + {html.escape(p.style.name)}</li>" for p in data.pairs)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dinstyle eval</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>dinstyle eval</h1>
<p>{r0['pairs']} pairs, {r0['styles']} styles, {r0['size']} px, seed {r0['seed']}{split}; style loss and
VGG-stats judges under {html.escape(r0['metric_net'])}. Judges: rank of each output's own style among all
evaluated styles (1 = best; chance mean rank {(r0['styles'] + 1) / 2:.1f}) by the distance of Magenta style
vectors (judge, texture) or of the metric net's channel means and stds at its four style taps (VGG-stats,
VGG-texture); the texture judges use palette-normalised copies. α=0: the model at alpha 0 against its
content (SSIM, mean absolute error in [0, 1]).</p>
{_html_table(results)}
<h2>Contact sheet</h2><p>Rows: content | style | each model's output.</p>
<img src="contact_sheet.png" alt="contact sheet">
<h2>Pairs</h2><ol>{pairs}</ol></body></html>
"""
    atomic_write(page_path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return [sheet_path, page_path]


__all__ = ["contact_sheet", "markdown_table", "write_report"]
