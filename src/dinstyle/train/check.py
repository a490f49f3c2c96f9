"""``dinstyle check-data``: what is in an image folder that training would convert or skip."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..io.imagefolders import BadImage, list_images, load_rgb, open_checked, oriented_size

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
GRAY_MODES = frozenset({"1", "L", "LA", "La"}) | SIXTEEN_BIT_MODES

# kind -> what training does about it
KINDS = {
    "unreadable": "skipped",
    "truncated": "skipped",
    "huge": "skipped (over the pixel limit)",
    "cmyk": "converted to RGB",
    "16-bit": "scaled to 8 bits",
    "alpha": "composited on white",
    "grayscale": "converted to RGB",
    "tiny": "upscaled to the crop size",
}


def _is_16bit(im) -> bool:
    if im.mode in SIXTEEN_BIT_MODES:
        return True
    # 16-bit RGB PNG/TIFF open as 8-bit 'RGB'; the decoder's raw mode still says ';16'
    return any(";16" in str(tile[3]) for tile in (im.tile or []) if len(tile) > 3)


def inspect_file(path: str | os.PathLike, size: int, max_pixels: int) -> dict:
    """{'path', 'issues': [kinds], 'width', 'height', 'mode', 'error'} for one file (never raises)."""
    rec: dict = {"path": str(path), "issues": [], "width": None, "height": None, "mode": None, "error": None}
    try:
        with open_checked(path, max_pixels) as im:
            sixteen = _is_16bit(im)  # before anything that may decode the image (and clear its tiles)
            rec["width"], rec["height"] = oriented_size(im)
            rec["mode"] = im.mode
            flags = [("cmyk", im.mode == "CMYK"), ("16-bit", sixteen),
                     ("alpha", im.mode in ALPHA_MODES or (im.mode == "P" and "transparency" in im.info)),
                     ("grayscale", im.mode in GRAY_MODES), ("tiny", min(rec["width"], rec["height"]) < size)]
            rec["issues"] = [k for k, on in flags if on]
        load_rgb(path, max_pixels)  # full decode: finds truncated and corrupt data
    except BadImage as e:
        rec["issues"].append(e.kind)
        rec["error"] = str(e)
    return rec


def _inspect_star(args: tuple) -> dict:
    return inspect_file(*args)


def check_folder(folder: str | os.PathLike, size: int = 256, max_pixels: int = 100_000_000,
                 workers: int = 0) -> dict:
    """Inspect every image file under ``folder``: {'folder', 'files', 'ok', 'counts', 'problems', 'actions'}."""
    files = list_images(folder)
    jobs = [(p, size, max_pixels) for p in files]
    if workers > 1 and len(files) > 32:
        with ProcessPoolExecutor(workers) as pool:
            records = list(pool.map(_inspect_star, jobs, chunksize=16))
    else:
        records = [inspect_file(*j) for j in jobs]
    problems: dict[str, list[dict]] = {k: [] for k in KINDS}
    for rec in records:
        for kind in rec["issues"]:
            problems[kind].append({k: rec[k] for k in ("path", "width", "height", "mode", "error")})
    return {"folder": str(Path(folder)), "files": len(records), "ok": sum(not r["issues"] for r in records),
            "counts": {k: len(v) for k, v in problems.items()}, "problems": problems, "actions": dict(KINDS),
            "size": size, "max_pixels": max_pixels}


def format_report(report: dict, show: int = 5) -> str:
    """Human-readable report: a summary line, then each kind found with up to ``show`` examples."""
    n, ok = report["files"], report["ok"]
    skipped = sum(report["counts"][k] for k in ("unreadable", "truncated", "huge"))
    lines = [f"{report['folder']}: {n} image files, {ok} fine, {n - ok} with issues "
             f"({skipped} would be skipped by training)"]
    for kind, action in report["actions"].items():
        items = report["problems"][kind]
        if not items:
            continue
        lines.append(f"  {kind:<11} {len(items):>6}  -> {action}")
        for it in items[:show]:
            lines.append(f"      {it['error']}" if it["error"] else
                         f"      {it['path']}  ({it['width']}x{it['height']} {it['mode']})")
        if len(items) > show:
            lines.append(f"      ... and {len(items) - show} more (--json lists all)")
    if n == 0:
        lines.append("  no image files found (jpg, jpeg, png, webp, bmp, tif, ...)")
    return "\n".join(lines)
