"""Generated training data: folders of smooth colourful pictures, and one file of each kind check-data reports.

For tests, demos and smoke-testing a training setup without downloading data.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth random picture (sums of oriented sinusoids plus a few blobs), (H, W, 3) uint8."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        for _ in range(3):
            fx, fy, phase = rng.uniform(-12, 12), rng.uniform(-12, 12), rng.uniform(0, 2 * np.pi)
            img[..., c] += np.sin(fx * xx + fy * yy + phase)
    for _ in range(3):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        img += (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r)[..., None] * rng.uniform(-2, 2, 3)
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
    return (img * 255 + 0.5).astype(np.uint8)


def make_image_folder(folder: str | Path, count: int, seed: int = 0, min_side: int = 48,
                      max_side: int = 96) -> list[Path]:
    """Write ``count`` synthetic images (mixed sizes, aspect ratios, jpg/png, one subfolder)."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        w, h = (int(v) for v in rng.integers(min_side, max_side + 1, 2))
        sub = folder / ("a" if i % 3 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{i:03d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(synthetic_image(rng, w, h)).save(path)
        paths.append(path)
    return paths


def write_png16(path: str | Path, rgb16: np.ndarray) -> None:
    """A 48-bit RGB PNG (Pillow cannot write one): (H, W, 3) uint16."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bits per channel, colour type 2 (RGB)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                           + chunk(b"IEND", b""))


def make_problem_images(folder: str | Path, size: int = 64, seed: int = 0) -> dict[str, Path]:
    """One file of each kind check-data reports ('huge' means > 2*size*size*4 pixels: pass
    max_pixels=size*size*4 to see it). Returns name -> path; names are kinds, plus '16-bit rgb'."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(synthetic_image(rng, 2 * size, 2 * size))
    out = {"unreadable": folder / "unreadable.jpg", "truncated": folder / "truncated.jpg", "cmyk": folder / "cmyk.jpg",
           "16-bit": folder / "sixteen.png", "alpha": folder / "alpha.png", "grayscale": folder / "gray.png",
           "tiny": folder / "tiny.png", "huge": folder / "huge.png", "16-bit rgb": folder / "rgb48.png"}
    out["unreadable"].write_bytes(b"this is not an image\n" * 8)
    buf = folder / "full.tmp.jpg"
    rgb.save(buf, quality=95)
    data = buf.read_bytes()
    buf.unlink()
    out["truncated"].write_bytes(data[: len(data) // 2])
    rgb.convert("CMYK").save(out["cmyk"])
    gray16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(out["16-bit"])  # mode I;16
    write_png16(out["16-bit rgb"], np.asarray(rgb, dtype=np.uint16) * 257)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, rgb.width, dtype=np.uint8), (rgb.height, 1))))
    rgba.save(out["alpha"])
    rgb.convert("L").save(out["grayscale"])
    rgb.resize((size // 2, size // 2)).save(out["tiny"])
    Image.fromarray(synthetic_image(rng, 3 * size, 3 * size)).save(out["huge"])
    return out
