"""What one optimisation step needs: model, loss, optimizer, lr schedule, precision, DDP.

Also used by ``benchmarks/train_throughput.py``, which feeds it synthetic batches.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import UsageError
from ..models import StyleTransferNet, create_model
from .config import TrainConfig
from .distributed import DistInfo, all_sum
from .losses import LossWeights, StyleTransferLoss


class InverseDecayLR:
    """AdaIN's schedule, lr = lr0 / (1 + decay * step): a pure function of the step, so resuming is exact."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, decay: float):
        self.optimizer, self.lr, self.decay = optimizer, lr, decay

    def lr_at(self, step: int) -> float:
        return self.lr / (1.0 + self.decay * step)

    def set_step(self, step: int) -> float:
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"lr": self.lr, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.decay = float(state["lr"]), float(state["decay"])


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


class TrainForward(nn.Module):
    """Stylized output and the alpha=0 reconstruction in ONE forward call (DDP allows one per backward)."""

    def __init__(self, model: StyleTransferNet, identity: bool):
        super().__init__()
        self.model, self.identity = model, identity

    def forward(self, content: torch.Tensor, style: torch.Tensor):
        code = self.model.encode_style(style)
        out = self.model.stylize(content, code, alpha=1.0)
        recon = self.model.stylize(content, code, alpha=0.0) if self.identity else None
        return out, recon


@dataclass
class StepResult:
    terms: dict[str, float]  # weighted loss terms and 'loss', averaged over processes
    grad_norm: float
    lr: float
    ok: bool  # all finite: the optimizer stepped
    stop: bool  # some process asked to stop (signal, time budget)


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


def build_model(arch: str, model_cfg: dict) -> StyleTransferNet:
    try:
        return create_model(arch, **model_cfg)
    except (ValueError, TypeError) as e:
        raise UsageError(f"model {arch!r}: {e}") from None


class Learner:
    """Owns the trainable state. ``step`` runs forward, backward, the NaN/inf guard and the update."""

    def __init__(self, cfg: TrainConfig, device: torch.device, dist: DistInfo | None = None,
                 model: StyleTransferNet | None = None):
        self.cfg, self.device, self.dist = cfg, device, dist or DistInfo()
        self.amp_dtype = resolve_precision(cfg.precision, device)
        self.channels_last = device.type == "cuda"
        torch.manual_seed(cfg.seed)
        self.model = model if model is not None else build_model(cfg.arch, cfg.model)
        self.model.to(device).train()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        freeze_parameters(self.model, cfg.freeze)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise UsageError(f"{cfg.arch} has no trainable parameters")
        identity = cfg.identity_weight > 0
        self.forward: nn.Module = TrainForward(self.model, identity)
        if cfg.compile:
            if device.type == "cuda":
                self.forward = torch.compile(self.forward)
            else:
                warnings.warn("--compile is only used on CUDA; ignored", stacklevel=2)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # Frozen backbones' buffers never change: no need to sync them every step.
            params = inspect.signature(DDP).parameters
            no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
            self.forward = DDP(self.forward, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)
        weights = LossWeights(cfg.content_weight, cfg.style_weight, cfg.identity_weight, cfg.tv_weight)
        self.loss = StyleTransferLoss.from_names(cfg.content_loss_net, cfg.style_loss_net, cfg.loss_net_seed,
                                                 weights, cfg.content_tap, cfg.style_taps,
                                                 cfg.normalize_loss_features).to(device)
        if self.channels_last:
            self.loss.to(memory_format=torch.channels_last)
        self.term_names = self.loss.term_names(identity) + ["loss"]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr)
        self.schedule = InverseDecayLR(self.optimizer, cfg.lr, cfg.lr_decay)

    def model_config(self) -> dict:
        """The full model config (for the resolved config file)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.model.config).items()}

    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) from the loader -> float [0, 1] on the device."""
        x = batch.to(self.device, non_blocking=True).float().div_(255.0)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, step: int, content: torch.Tensor, style: torch.Tensor, stop: bool = False) -> StepResult:
        """One update at 0-based ``step``; skipped (no update) when any loss or the gradient is non-finite."""
        lr = self.schedule.set_step(step)
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            out, recon = self.forward(content, style)
            terms = self.loss(out, content, style, recon)
        terms["loss"].backward()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        # One small all-reduce: mean loss terms, the (already identical) grad norm, and the stop votes.
        vec = torch.stack([terms[n].detach().float() for n in self.term_names] + [norm.detach().float()])
        vec = torch.cat([vec / self.dist.world, torch.tensor([float(stop)], device=vec.device)])
        values = all_sum(vec).tolist()
        ok = all(math.isfinite(v) for v in values[:-1])
        if ok:
            self.optimizer.step()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        return StepResult(dict(zip(self.term_names, values)), values[-2], lr, ok, values[-1] > 0)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
