"""The objectives ``Learner.step`` optimises, and the data source each reads.

An objective has:

- ``forward``: an ``nn.Module`` that runs the student on a batch (what DDP and ``torch.compile`` wrap: DDP allows
  one forward call per backward, so everything the student computes happens in it);
- ``targets(batch)``: what the batch needs beyond the data (the teacher's outputs), without gradients;
- ``loss(outputs, batch)``: the weighted terms and their sum, ``'loss'``; ``term_names`` lists them in order;
- ``sample_column(content, styles)``: an extra column for the sample grids (the teacher's outputs), or None;
- ``info``: what the model file says about the recipe.

``make_objective`` pairs each with its data source: the paper's losses read files streamed by a DataLoader
(``data.StreamData``: any number of workers and processes, exact resume); teacher-guided training reads
everything from memory (``bank.BankData``: made for a small CPU).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..models import StyleTransferNet
from ..models.stylecode import StyleCode
from .bank import BankData
from .config import TrainConfig
from .data import StreamData
from .distill import LevelTaps, level_terms
from .distributed import DistInfo
from .losses import LossWeights, StyleTransferLoss
from .teacher import TEACHER_CREDIT, TeacherLoss, TeacherLossWeights, loss_network, make_teacher


class PaperForward(nn.Module):
    """Stylized output and the alpha=0 reconstruction in ONE forward call."""

    def __init__(self, model: StyleTransferNet, identity: bool):
        super().__init__()
        self.model, self.identity = model, identity

    def forward(self, batch: dict):
        code = self.model.encode_style(batch["style"])
        out = self.model.stylize(batch["content"], code, alpha=1.0)
        recon = self.model.stylize(batch["content"], code, alpha=0.0) if self.identity else None
        return out, recon


class PaperObjective:
    """The paper's recipe (AdaIN's, plus an identity term): loss networks on the output, the content and the
    style (``losses.StyleTransferLoss``)."""

    def __init__(self, cfg: TrainConfig, model: StyleTransferNet, device: torch.device):
        identity = cfg.identity_weight > 0
        self.forward = PaperForward(model, identity)
        weights = LossWeights(cfg.content_weight, cfg.style_weight, cfg.identity_weight, cfg.tv_weight)
        self.loss_fn = StyleTransferLoss.from_names(cfg.content_loss_net, cfg.style_loss_net, cfg.loss_net_seed,
                                                    weights, cfg.content_tap, cfg.style_taps,
                                                    cfg.normalize_loss_features).to(device)
        if device.type == "cuda":
            self.loss_fn.to(memory_format=torch.channels_last)
        self.term_names = self.loss_fn.term_names(identity) + ["loss"]
        self.info = {"recipe": "the paper's losses",
                     "loss": {"content_net": cfg.content_loss_net, "style_net": cfg.style_loss_net,
                              "content_weight": cfg.content_weight, "style_weight": cfg.style_weight,
                              "identity_weight": cfg.identity_weight, "tv_weight": cfg.tv_weight}}

    def targets(self, batch: dict) -> dict:
        return batch

    def loss(self, outputs, batch: dict) -> dict[str, torch.Tensor]:
        out, recon = outputs
        return self.loss_fn(out, batch["content"], batch["style"], recon)

    def sample_column(self, content: torch.Tensor, styles: list[np.ndarray]) -> torch.Tensor | None:
        return None


class TeacherForward(nn.Module):
    """The student on a bank batch: codes from the cached style taps (each style's once, repeated for its
    photos), the output (with the DIN levels recorded for the distill term), the alpha=0 reconstruction and
    the output at the batch's random mid alpha, each only where a term reads it."""

    def __init__(self, model: StyleTransferNet, cfg: TrainConfig):
        super().__init__()
        self.model, self.per_style, self.levels = model, cfg.contents_per_style, cfg.distill_levels
        self.distill, self.mid = bool(cfg.distill_weight), bool(cfg.mid_alpha_weight)
        self.identity = bool(cfg.identity_weight or cfg.identity_ssim_weight)

    def forward(self, batch: dict) -> dict:
        raw = self.model.style_encoder.from_taps(batch["taps"])
        code = StyleCode({k: v.repeat_interleave(self.per_style, 0) for k, v in raw.items()})
        content, levels = batch["content"], LevelTaps(self.levels) if self.distill else None
        out = {"out": self.model.stylize(content, code, alpha=1.0, stats_fn=levels)}
        if levels is not None:
            out["levels"] = levels.seen
        if self.identity:
            out["recon"] = self.model.stylize(content, code, alpha=0.0)
        if self.mid:
            out["mid"] = self.model.stylize(content, code, alpha=batch["mid_alpha"])
        return out


class TeacherObjective:
    """Teacher-guided training: the student learns the teacher's outputs (Magenta's network, a frozen copy of the
    init model, or another model file) in a loss network's features and statistics and in pixels
    (``teacher.TeacherLoss``), plus the distill, identity and mid-alpha terms. Made fast on a CPU by its data
    source (``bank.BankData``): the teacher's style vectors and the style statistics are computed once per style."""

    def __init__(self, cfg: TrainConfig, model: StyleTransferNet, data: BankData, device: torch.device):
        self.cfg, self.device = cfg, device
        self.teacher = make_teacher(cfg.teacher, cfg.init, threads=cfg.threads or None, model=cfg.teacher_model,
                                    device=device)
        self.vectors = np.stack([self.teacher.style_vector(data.styles.image(i)) for i in range(len(data.styles))])
        weights = TeacherLossWeights(cfg.feature_weight, cfg.stats_weight, cfg.pixel_weight, cfg.style_weight,
                                     cfg.identity_weight, cfg.identity_ssim_weight)
        needs_net = bool(cfg.feature_weight or cfg.stats_weight or cfg.style_weight or cfg.mid_alpha_weight)
        net = loss_network(model.style_encoder).to(device) if needs_net else None
        self.loss_fn = TeacherLoss(net, weights, cfg.feature_taps, cfg.stats_taps, True, cfg.pixel_scale)
        self.style_stats = self._style_stats(data) if cfg.style_weight else None
        self.forward = TeacherForward(model, cfg)
        terms = [("feature", cfg.feature_weight), ("stats", cfg.stats_weight), ("style", cfg.style_weight),
                 ("pixel", cfg.pixel_weight), ("identity", cfg.identity_weight),
                 ("identity_ssim", cfg.identity_ssim_weight), ("distill", cfg.distill_weight),
                 ("mid_alpha", cfg.mid_alpha_weight)]
        self.term_names = [n for n, w in terms if w] + ["loss"]
        loss_keys = ("feature_weight", "stats_weight", "pixel_weight", "style_weight", "identity_weight",
                     "identity_ssim_weight", "mid_alpha_weight", "distill_weight", "pixel_scale")
        self.info = {"teacher": {"magenta": TEACHER_CREDIT, "init": f"frozen copy of {cfg.init}"}.get(cfg.teacher,
                                                                                                   cfg.teacher_model),
                     "recipe": f"teacher-guided (dinstyle train --teacher {cfg.teacher})",
                     "loss": {k: getattr(cfg, k) for k in loss_keys},
                     **({"offset_lr_scale": cfg.offset_lr_scale} if cfg.offset_lr_scale != 1.0 else {})}

    @torch.no_grad()
    def _style_stats(self, data: BankData) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each training style's channel statistics in the loss network (the style term's targets)."""
        images = data.styles.images
        stats = [self.loss_fn.style_stats(images[i:i + 8].to(self.device).float() / 255) for i in range(0, len(images), 8)]
        return {t: tuple(torch.cat([s[t][j] for s in stats]) for j in range(2)) for t in stats[0]}

    @torch.no_grad()
    def targets(self, batch: dict) -> dict:
        """The teacher's outputs for the batch (and its DIN levels, for the distill term), a random mid alpha."""
        cfg = self.cfg
        per_image = batch["style_index"].cpu().repeat_interleave(cfg.contents_per_style)
        self.teacher.taps = LevelTaps(cfg.distill_levels) if cfg.distill_weight else None
        batch["teacher"] = self.teacher.targets(batch["content"], self.vectors[per_image.numpy()])
        if cfg.distill_weight:
            batch["teacher_levels"] = self.teacher.taps.seen
        if cfg.mid_alpha_weight:
            batch["mid_alpha"] = 0.1 + 0.8 * float(torch.rand(()))
        batch["per_image"] = per_image.to(self.device)
        return batch

    def loss(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        cfg, content, teacher = self.cfg, batch["content"], batch["teacher"]
        stats = None
        if self.style_stats is not None:
            per = batch["per_image"]
            stats = {t: (m[per], s[per]) for t, (m, s) in self.style_stats.items()}
        terms = self.loss_fn(outputs["out"], teacher, content, stats, outputs.get("recon"))
        if cfg.distill_weight:
            terms["distill"] = cfg.distill_weight * level_terms(outputs["levels"], batch["teacher_levels"])
            terms["loss"] = terms["loss"] + terms["distill"]
        if cfg.mid_alpha_weight:  # the crossfade of the two ends it is trained for
            a = batch["mid_alpha"]
            mid = self.loss_fn(outputs["mid"], a * teacher + (1 - a) * content, content)
            terms["mid_alpha"] = cfg.mid_alpha_weight * mid["loss"]
            terms["loss"] = terms["loss"] + terms["mid_alpha"]
        return terms

    @torch.no_grad()
    def sample_column(self, content: torch.Tensor, styles: list[np.ndarray]) -> torch.Tensor:
        self.teacher.taps = None
        vectors = np.stack([self.teacher.style_vector(s) for s in styles])
        return self.teacher.targets(content.float(), vectors)


def make_objective(cfg: TrainConfig, model: StyleTransferNet, dist: DistInfo, device: torch.device, say=print):
    """The run's data source and objective: (data, objective)."""
    if not cfg.teacher:
        return StreamData(cfg, dist, device.type == "cuda"), PaperObjective(cfg, model, device)
    if dist.enabled:
        raise UsageError("teacher-guided training runs in one process (its data is drawn in memory): "
                         "start it without torchrun")
    data = BankData(cfg, model, device, say)
    return data, TeacherObjective(cfg, model, data, device)
