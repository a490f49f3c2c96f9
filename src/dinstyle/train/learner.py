"""What one optimisation step needs, for every objective: the model (from a checkpoint, an init file or fresh),
the optimizer, the one learning-rate schedule, precision and DDP.

Also used by ``benchmarks/train_throughput.py``, which feeds it synthetic batches.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..defaults import DEFAULT_MODEL
from ..errors import DinstyleError, UsageError, first_line
from ..models import StyleTransferNet, create_model
from ..models.registry import read_model_file
from .checkpoint import load_trainable
from .config import TrainConfig
from .distributed import DistInfo, all_sum

DEFAULT_ARCH = DEFAULT_MODEL


def lr_at(cfg: TrainConfig, step: int) -> float:
    """The learning rate at 0-based ``step``, a pure function of it (exact resume): a linear warm-up over
    ``warmup`` steps, then AdaIN's inverse decay, lr / (1 + lr_decay x t), or a cosine down to ``lr_final`` at the
    last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.lr_schedule == "cosine":
        t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
        return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))
    return cfg.lr / (1.0 + cfg.lr_decay * (step - cfg.warmup))


def build_model(cfg: TrainConfig, device: torch.device, weights: Path | None = None
                ) -> tuple[TrainConfig, StyleTransferNet]:
    """The one place ``init`` is read. The model of a new run takes its arch and model config from the init file
    (explicit settings win) and starts from its weights; a resumed run's (``weights``: its checkpoint's model file)
    was resolved when it started. Weights are loaded before anything is computed with the model (a data source may
    cache what the style encoder's frozen part makes of the styles). Returns the config with the full model
    config, and the model on ``device``."""
    arch, model_cfg = cfg.arch, dict(cfg.model)
    if cfg.init and weights is None:
        _, meta = read_model_file(cfg.init)
        if cfg.arch and meta.get("arch") != cfg.arch:
            raise UsageError(f"--init {cfg.init} is a {meta.get('arch')} model, not {cfg.arch}")
        arch, model_cfg = meta.get("arch"), {**meta.get("config", {}), **model_cfg}
    arch = arch or DEFAULT_ARCH
    try:
        model = create_model(arch, **model_cfg)
    except (ValueError, TypeError) as e:
        raise UsageError(f"model {arch!r}: {e}") from None
    if weights is not None:
        try:
            load_trainable(model, weights)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise DinstyleError(f"{weights}: not usable to resume from ({first_line(e)})") from None
    elif cfg.init:
        load_trainable(model, cfg.init)
    model.to(device).train()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    full = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()}
    return dataclasses.replace(cfg, arch=arch, model=full), model


def freeze_parameters(model: nn.Module, prefixes: tuple[str, ...]) -> None:
    """Keep the parameters whose names start with any of ``prefixes`` fixed; a prefix matching nothing is a
    usage error (a typo would otherwise train everything)."""
    for prefix in prefixes:
        matched = [p for n, p in model.named_parameters() if n == prefix or n.startswith(prefix.rstrip(".") + ".")]
        if not matched:
            raise UsageError(f"--freeze {prefix}: no parameter of the model is named so "
                             f"(top-level names: {', '.join(sorted({n.split('.')[0] for n, _ in model.named_parameters()}))})")
        for p in matched:
            p.requires_grad_(False)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. 'auto' is bf16 on CUDA cards that support it."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if precision == "bf16":
            raise UsageError("--precision bf16: this GPU does not support bfloat16")
        return None
    if device.type == "mps":
        raise UsageError("--precision bf16 is not supported on MPS; use fp32")
    return torch.bfloat16


@dataclass
class StepResult:
    terms: dict[str, float]  # weighted loss terms and 'loss', averaged over processes
    grad_norm: float
    lr: float
    ok: bool  # all finite: the optimizer stepped
    stop: bool  # some process asked to stop (signal, time budget)


def _wrap(forward: nn.Module, cfg: TrainConfig, device: torch.device, dist: DistInfo) -> nn.Module:
    """The objective's student forward, compiled (CUDA) and under DDP when several processes train."""
    if cfg.compile:
        if device.type == "cuda":
            forward = torch.compile(forward)
        else:
            warnings.warn("--compile is only used on CUDA; ignored", stacklevel=3)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # Frozen backbones' buffers never change: no need to sync them every step.
        params = inspect.signature(DDP).parameters
        no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
        forward = DDP(forward, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)
    return forward


class Learner:
    """Owns the trainable state. ``step`` runs the objective's forward and loss, backward, the NaN/inf guard and
    the update, whatever the objective."""

    def __init__(self, cfg: TrainConfig, model: StyleTransferNet, objective, device: torch.device,
                 dist: DistInfo | None = None):
        self.cfg, self.model, self.objective, self.device = cfg, model, objective, device
        self.dist = dist or DistInfo()
        self.amp_dtype = resolve_precision(cfg.precision, device)
        self.channels_last = device.type == "cuda"
        freeze_parameters(model, cfg.freeze)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        if not self.params:
            raise UsageError(f"{cfg.arch} has no trainable parameters")
        offsets = [p for n, p in named if ".offset_" in n]  # deformable DIN's offset predictors start at zero
        groups = [{"params": [p for n, p in named if ".offset_" not in n], "lr_scale": 1.0}]
        if offsets:
            groups.append({"params": offsets, "lr_scale": cfg.offset_lr_scale})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr)
        self.forward = _wrap(objective.forward, cfg, device, self.dist)

    def to_device(self, batch):
        """A data source's batch on the device: uint8 images become float [0, 1] there (a quarter of the copy)."""
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if not torch.is_tensor(batch):
            return batch
        x = batch.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, step: int, batch: dict, stop: bool = False) -> StepResult:
        """One update at 0-based ``step``; skipped (no update) when any loss or the gradient is non-finite."""
        lr = lr_at(self.cfg, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        self.optimizer.zero_grad(set_to_none=True)
        batch = self.objective.targets(self.to_device(batch))
        with self.autocast():
            terms = self.objective.loss(self.forward(batch), batch)
        terms["loss"].backward()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        # One small all-reduce: mean loss terms, the (already identical) grad norm, and the stop votes.
        names = self.objective.term_names
        vec = torch.stack([terms[n].detach().float() for n in names] + [norm.detach().float()])
        vec = torch.cat([vec / self.dist.world, torch.tensor([float(stop)], device=vec.device)])
        values = all_sum(vec).tolist()
        ok = all(math.isfinite(v) for v in values[:-1])
        if ok:
            self.optimizer.step()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        return StepResult(dict(zip(names, values)), values[-2], lr, ok, values[-1] > 0)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
