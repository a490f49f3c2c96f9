"""Teacher-guided training's data source: everything decoded once into memory, built for a small CPU.

- every photo is decoded once at ``content_short_side``; crops come from RAM, no workers;
- every style is prepared once: its centred square at the model's style size and what the style encoder's
  frozen part makes of it (backbone taps or Magenta's predictor vector, fp16), so no step runs the frozen
  encoder on a style image;
- each step takes ``styles_per_step`` styles and ``contents_per_style`` photos for each: the weight and
  bias nets run once per style, not once per image.

The draws come from one ``random.Random`` whose state the checkpoint keeps (exact resume). Files whose name
hashes into the held-out split (``io.holdout``) are never trained on; the sample grids show held-out pairs.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import DinstyleError, UsageError
from ..io.holdout import split_files
from ..io.imagefolders import BadImage, list_images, load_rgb


def center_square(im: Image.Image, size: int) -> np.ndarray:
    """The centred square crop of ``im`` resized to ``size`` (HxWx3 uint8): what the style side sees."""
    w, h = im.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(im.crop(box).resize((size, size), Image.LANCZOS, reducing_gap=3.0))


def resize_short_side(im: Image.Image, short: int) -> np.ndarray:
    w, h = im.size
    k = short / min(w, h)
    return np.asarray(im.resize((max(short, round(w * k)), max(short, round(h * k))), Image.LANCZOS, reducing_gap=3.0))


def load_bank(files: Sequence[Path], prepare, max_pixels: int, bad: list[str]) -> tuple[list, list[Path]]:
    """Decode every file once with ``prepare(PIL image)``; unusable files are skipped and recorded in ``bad``
    ('kind<TAB>path<TAB>message', as the streamed data records them)."""
    items, kept = [], []
    for f in files:
        try:
            items.append(prepare(load_rgb(f, max_pixels)))
            kept.append(f)
        except BadImage as e:
            bad.append(f"{e.kind}\t{f}\t{e}")
    return items, kept


@dataclass
class StyleBank:
    """Every training style, prepared once: the image and what the style encoder's frozen part makes of it."""

    images: torch.Tensor  # (S, 3, s, s) uint8
    taps: dict[str, torch.Tensor]  # tap -> (S, ...) fp16
    files: list[Path]

    def __len__(self) -> int:
        return len(self.files)

    def image(self, i: int) -> np.ndarray:
        """Style ``i`` as an HxWx3 uint8 array."""
        return self.images[i].permute(1, 2, 0).numpy()


@torch.no_grad()
def build_style_bank(files: Sequence[Path], size: int, taps_of: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                     max_pixels: int, bad: list[str], device: torch.device | str = "cpu", chunk: int = 8) -> StyleBank:
    """Every style image once through the style encoder's frozen part (``taps_of``; cached in fp16)."""
    images, kept = load_bank(files, lambda im: center_square(im, size), max_pixels, bad)
    if not images:
        raise DinstyleError("no usable style images")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    feats: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(x), chunk):
        for t, f in taps_of(x[i:i + chunk].to(device).float() / 255.0).items():
            feats.setdefault(t, []).append(f.half().cpu())
    return StyleBank(x, {t: torch.cat(v) for t, v in feats.items()}, kept)


class ContentBank:
    """Training photos decoded once at a small short side; random crops (+ flips) drawn from memory."""

    def __init__(self, files: Sequence[Path], short_side: int, max_pixels: int, bad: list[str]):
        self.images, self.files = load_bank(files, lambda im: resize_short_side(im, short_side), max_pixels, bad)
        if not self.images:
            raise DinstyleError("no usable content images")

    def __len__(self) -> int:
        return len(self.images)

    def crops(self, rng: random.Random, n: int, size: int, scale: tuple[float, float], flip: bool = True) -> torch.Tensor:
        """``n`` random crops: a square of size x U(scale) px, resized to ``size``; (n, 3, size, size) float."""
        out = []
        for _ in range(n):
            a = self.images[rng.randrange(len(self.images))]
            h, w = a.shape[:2]
            s = min(h, w, int(size * rng.uniform(*scale)))
            y, x = rng.randrange(h - s + 1), rng.randrange(w - s + 1)
            crop = Image.fromarray(a[y:y + s, x:x + s])
            if s != size:
                crop = crop.resize((size, size), Image.BILINEAR)
            c = np.asarray(crop)
            out.append(c[:, ::-1] if rng.random() < 0.5 and flip else c)
        return torch.from_numpy(np.stack(out).copy()).permute(0, 3, 1, 2).float().div_(255.0)


class BankData:
    """Batches of ``styles_per_step`` styles x ``contents_per_style`` photos, drawn from memory:
    ``{"content": (B, 3, s, s) float, "style_index": (S,) long, "taps": {tap: (S, ...) float}}``."""

    def __init__(self, cfg, model, device: torch.device, say=print):
        style_encoder = model.style_encoder
        if not callable(getattr(style_encoder, "taps_of", None)):  # the bank caches the encoder's frozen part
            raise UsageError(f"teacher-guided training needs a style encoder with a frozen part (din-fast, din-magenta, "
                             f"din-mobilenet, din-mobilenet-vgg, din-vgg); {cfg.arch} trains with the paper's recipe "
                             "(no teacher)")
        self.cfg, self.style_size, self.bad = cfg, model.style_size, []
        files = {}
        for role in ("content", "style"):
            found = list_images(getattr(cfg, role)) if getattr(cfg, role) else []
            if not found:
                raise UsageError(f"--{role}: no images in {getattr(cfg, role)!r}")
            files[role], files[role + "_held"] = split_files(found)
        t0 = time.monotonic()
        self.styles = build_style_bank(files["style"], self.style_size, style_encoder.taps_of, cfg.max_pixels,
                                       self.bad, device)
        self.contents = ContentBank(files["content"], cfg.content_short_side, cfg.max_pixels, self.bad)
        say(f"dinstyle: {len(self.contents)} photos, {len(self.styles)} styles prepared in "
            f"{time.monotonic() - t0:.0f} s (held out: {len(files['content_held'])} photos, "
            f"{len(files['style_held'])} styles)")
        if cfg.styles_per_step > len(self.styles):
            raise UsageError(f"styles_per_step = {cfg.styles_per_step}: only {len(self.styles)} usable styles")
        self.rng = random.Random(cfg.seed)
        self.batch_images = cfg.styles_per_step * cfg.contents_per_style
        # Samples show held-out pairs (training files only when a folder has none held out).
        self.samples = self._samples(files["content_held"] or files["content"], files["style_held"] or files["style"])
        self.info = {"content_images": len(self.contents), "style_images": len(self.styles),
                     "style_size": self.style_size, "held_out": "sha256(file name) % 100 < 12"}

    def _samples(self, contents, styles) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``sample_count`` fixed held-out pairs: photos at twice the training size, styles at the style size."""
        rng, size, n, ignored = random.Random(1234), 2 * self.cfg.size, self.cfg.sample_count, []
        if not n:
            return [], []
        cbank = ContentBank(rng.sample(contents, min(n, len(contents))), size, self.cfg.max_pixels, ignored)
        picked = rng.sample(styles, min(n, len(styles)))
        sbank, _ = load_bank(picked, lambda im: center_square(im, self.style_size), self.cfg.max_pixels,
                             ignored)
        n = min(len(cbank), len(sbank))
        crops = cbank.crops(random.Random(0), n, size, (1.0, 1.0))
        return list((crops * 255 + 0.5).byte().permute(0, 2, 3, 1).numpy()), sbank[:n]

    def next(self) -> dict:
        c = self.cfg
        idx = self.rng.sample(range(len(self.styles)), c.styles_per_step)
        content = self.contents.crops(self.rng, self.batch_images, c.size, c.crop_scale, c.flip)
        return {"content": content, "style_index": torch.tensor(idx),
                "taps": {t: v[idx].float() for t, v in self.styles.taps.items()}}

    def take_bad(self) -> list[str]:
        """Unusable files found since the last call ('kind<TAB>path<TAB>message')."""
        bad, self.bad = self.bad, []
        return bad

    def state_dict(self) -> dict:
        version, state, gauss = self.rng.getstate()
        return {"rng": {"version": version, "state": torch.tensor(state, dtype=torch.int64), "gauss_next": gauss}}

    def load_state_dict(self, state: dict) -> None:
        r = state["rng"]
        self.rng.setstate((r["version"], tuple(int(x) for x in r["state"].tolist()), r["gauss_next"]))
