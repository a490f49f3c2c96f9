"""Distillation terms for a student of another architecture (``teacher = "model"``): the teacher's own
intermediate features, read at the DIN levels both networks share by name, and its pixels at full size.

Why not the VGG terms here: the student starts from the teacher's layers and can follow it closely, so
the teacher itself is the better feature space, and a VGG-19 forward and backward at 128 px costs ~50x
the student's own step (DESIGN.md). The VGG terms stay available (``feature_weight`` etc.) to mix in.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..layers.din import instance_stats


class LevelTaps:
    """A ``stats_fn`` that records the instance-normalised input of the named DIN levels and changes nothing:
    features compared this way ignore the scale of the conv before the level, as the level itself does."""

    def __init__(self, levels: Sequence[str]):
        self.levels, self.seen = set(levels), {}

    def __call__(self, name: str, x: torch.Tensor):
        if name in self.levels:
            mean, std = instance_stats(x)
            self.seen[name] = (x - mean) / std
        return None


def level_terms(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over the shared levels of the MSE between normalised features (teacher's without gradient)."""
    shared = sorted(set(student) & set(teacher))
    if not shared:
        raise ValueError("no DIN level is shared by the student and the teacher")
    return sum(F.mse_loss(student[n].float(), teacher[n].detach().float()) for n in shared) / len(shared)


def pixel_term(out: torch.Tensor, teacher: torch.Tensor, scale: int) -> torch.Tensor:
    """L1 to the teacher's pixels, after ``scale`` x average pooling (1 = full size: texture included)."""
    if scale > 1:
        out, teacher = F.avg_pool2d(out.float(), scale), F.avg_pool2d(teacher.float(), scale)
    return F.l1_loss(out.float(), teacher.float())
