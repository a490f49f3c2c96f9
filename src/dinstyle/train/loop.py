"""``train(cfg)``: data, learner, logs, samples, checkpoints, signals and the time budget, put together.

Step numbers count finished optimisation steps: the log entry for step k holds the loss of the
k-th batch, and a checkpoint at step k resumes with batch k+1.
"""
from __future__ import annotations

import dataclasses
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..defaults import DEFAULT_MODEL
from ..errors import DinstyleError, UsageError
from ..io.atomic import atomic_write
from ..models import save_model
from ..models.registry import read_model_file
from . import checkpoint as ckpt
from .config import TrainConfig, to_dict, to_toml
from .data import PairDataset, make_loader, split_samples, training_files
from .distributed import barrier, gather_lists, init_distributed, shutdown_distributed
from .images import list_images
from .learner import Learner
from .plot import loss_curve, sample_grid
from .reporting import LogWriter, Progress, SkippedFiles, Throughput

DEFAULT_ARCH = DEFAULT_MODEL
EXIT_CODES = {"done": 0, "time budget": 0, "SIGINT": 130, "SIGTERM": 143}


@dataclass
class TrainResult:
    model_path: Path | None  # RUN_DIR/model.safetensors (None on non-main processes)
    step: int
    reason: str  # 'done', 'time budget', 'SIGINT' or 'SIGTERM'

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.reason, 1)


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Run (or resume) a training run; see docs/TRAINING.md. Joins DDP when launched by torchrun."""
    if not cfg.run:
        raise UsageError("--run RUN_DIR is required")
    info, device = init_distributed(cfg.device)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _Run(cfg, resume, info, device).run()
    finally:
        torch.use_deterministic_algorithms(deterministic)
        shutdown_distributed()


def _resolve_model(cfg: TrainConfig) -> TrainConfig:
    """Fill the arch and model config from --init's file (explicit settings win)."""
    if not cfg.init:
        return dataclasses.replace(cfg, arch=cfg.arch or DEFAULT_ARCH)
    _, meta = read_model_file(cfg.init)
    arch = meta.get("arch")
    if cfg.arch and arch != cfg.arch:
        raise UsageError(f"--init {cfg.init} is a {arch} model, not {cfg.arch}")
    return dataclasses.replace(cfg, arch=arch or DEFAULT_ARCH, model={**meta.get("config", {}), **cfg.model})


class _Run:
    def __init__(self, cfg: TrainConfig, resume: bool, info, device: torch.device):
        self.cfg, self.resume, self.info, self.device = cfg, resume, info, device
        self.run_dir = Path(cfg.run)
        self.signal_name: str | None = None

    # ------------------------------------------------------------------ setup
    def _data(self) -> None:
        cfg = self.cfg
        files = {}
        for role in ("content", "style"):
            folder = getattr(cfg, role)
            if not folder:
                raise UsageError(f"--{role} DIR is required")
            files[role] = list_images(folder)
            if not files[role]:
                raise DinstyleError(f"{folder}: no images found (jpg, png, webp, bmp, tif, ...)")
        held_c, self.sample_content = split_samples(files["content"], cfg.sample_count, cfg.seed, 0, cfg.size, cfg.max_pixels)
        held_s, self.sample_style = split_samples(files["style"], cfg.sample_count, cfg.seed, 1, cfg.size, cfg.max_pixels)
        n = min(len(self.sample_content), len(self.sample_style))
        self.sample_content, self.sample_style = self.sample_content[:n], self.sample_style[:n]
        self.dataset = PairDataset(training_files(files["content"], held_c), training_files(files["style"], held_s),
                                   cfg.size, cfg.seed, cfg.crop_scale, cfg.flip, cfg.max_pixels)
        self.counts = {"content_images": len(self.dataset.content.files), "style_images": len(self.dataset.style.files)}

    def _setup(self) -> None:
        cfg = self.cfg
        ckpt.check_run_dir(self.run_dir, self.resume)
        state = ckpt.load_checkpoint(self.run_dir) if self.resume else None
        barrier()  # every process has looked before the main one writes
        ckpt.seed_everything(cfg.seed)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self._data()
        if not self.resume:
            cfg = _resolve_model(cfg)
        self.learner = Learner(cfg, self.device, self.info)
        self.cfg = cfg = dataclasses.replace(cfg, model=self.learner.model_config())
        self.step, self.position, self.bad_steps, skipped = 0, 0, 0, {}
        if state is not None:
            self.step, self.position, self.bad_steps, skipped = ckpt.restore(state, self.run_dir, self.learner.model,
                                                                             self.learner)
        elif cfg.init:
            ckpt.load_trainable(self.learner.model, cfg.init)
        self.skipped = SkippedFiles(skipped)
        if self.info.main:
            if self.resume:
                ckpt.truncate_log(self.run_dir / "log.jsonl", self.step)
            else:  # what a run that stopped before its first checkpoint left (``check_run_dir`` let it be reused)
                ckpt.clear_unstarted(self.run_dir)
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / "config.toml", lambda tmp: tmp.write_text(to_toml(cfg), encoding="utf-8"))
        barrier()

    # ------------------------------------------------------------------ outputs (main process)
    def _model_info(self) -> dict:
        c = self.cfg
        return {"step": self.step, "steps": c.steps, "run": self.run_dir.name, "size": c.size,
                "batch_size": c.batch_size * self.info.world, "seed": c.seed, **self.counts,
                "loss": {"content_net": c.content_loss_net, "style_net": c.style_loss_net,
                         "content_weight": c.content_weight, "style_weight": c.style_weight,
                         "identity_weight": c.identity_weight, "tv_weight": c.tv_weight}}

    def _sync_skipped(self) -> None:
        """Collect every process's new bad-file records (all processes call this at the same steps)."""
        records = gather_lists(self.pending_bad)
        self.pending_bad = []
        if self.info.main:
            self.skipped.add(records, self.progress.say)

    def _checkpoint(self) -> None:
        self._sync_skipped()
        self.last_checkpoint = self.step
        if not self.info.main:
            return
        model_file = ckpt.model_file_name(self.step)
        save_model(self.learner.model, self.run_dir / model_file, info=self._model_info())
        state = {"format_version": ckpt.FORMAT_VERSION, "step": self.step, "sample_position": self.position,
                 "model_file": model_file, **self.learner.state_dict(), "rng": ckpt.rng_state(),
                 "config": to_dict(self.cfg), "skipped_files": dict(self.skipped.files),
                 "bad_steps": self.bad_steps, "world_size": self.info.world}
        # model.safetensors = the latest checkpoint's weights: copied, not serialised a second time
        atomic_write(self.run_dir / "model.safetensors", lambda tmp: shutil.copyfile(self.run_dir / model_file, tmp))
        ckpt.save_checkpoint(self.run_dir, state, self.cfg.keep_checkpoints)

    @torch.no_grad()
    def _samples(self) -> None:
        if not self.info.main or not self.sample_content:
            return
        model, learner = self.learner.model, self.learner
        to = lambda arrs: learner.to_input(torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2))  # noqa: E731
        content, style = to(self.sample_content), to(self.sample_style)
        model.eval()
        try:
            with learner.autocast():
                code = model.encode_style(style)
                outs = [model.stylize(content, code, alpha=a) for a in (1.0, 0.0)]
        finally:
            model.train()
        u8 = [(o.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8) for o in outs]
        rows = [[c, s, u8[0][i], u8[1][i]] for i, (c, s) in enumerate(zip(self.sample_content, self.sample_style))]
        sample_grid(rows, self.run_dir / "samples" / f"step-{self.step:08d}.png",
                    header=f"{self.cfg.arch}  step {self.step}")

    def _log(self, result, rate: float) -> None:
        self._sync_skipped()
        if self.info.main:
            entry = {"step": self.step, **result.terms, "lr": result.lr, "grad_norm": result.grad_norm,
                     "images_per_s": rate, "skipped_files": len(self.skipped.files), "bad_steps": self.bad_steps}
            if not result.ok:
                entry["update_skipped"] = True
            self.log.write(entry)
            self.progress.line(self.step, result.terms, result.lr, rate)

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, _frame) -> None:
        self.signal_name = signal.Signals(signum).name
        # A second Ctrl-C / SIGTERM is not polite any more: default behaviour.
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    def _next_batch(self, batches):
        try:
            return next(batches)
        except DinstyleError as e:  # raised in a worker: keep the message, drop the worker's traceback
            raise DinstyleError(str(e).strip().splitlines()[-1].split("DinstyleError: ", 1)[-1]) from None

    def run(self) -> TrainResult:
        self._setup()
        self._open_outputs()
        handlers = self._catch_signals()
        try:
            return self._finish(self._train())
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            self.progress.close()
            self.log.close()

    def _open_outputs(self) -> None:
        cfg, main = self.cfg, self.info.main
        self.pending_bad: list[str] = []
        self.last_checkpoint = self.step if self.resume else -1
        self.progress = Progress(cfg.steps, self.step, enabled=main and cfg.progress)
        self.log = LogWriter(self.run_dir / "log.jsonl" if main else None)

    def _catch_signals(self) -> dict:
        """SIGINT/SIGTERM finish the current step and checkpoint; returns the handlers to put back."""
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set them
            return {}
        return {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def _train(self) -> str:
        """Steps until ``cfg.steps`` or a stop; returns the reason."""
        cfg, started = self.cfg, time.monotonic()
        self.batch_images = cfg.batch_size * self.info.world
        loader = make_loader(self.dataset, cfg.batch_size, self.position, self.info.rank, self.info.world,
                             cfg.workers, pin_memory=self.device.type == "cuda")
        batches, self.window, self.consecutive_bad = iter(loader), Throughput(), 0
        while self.step < cfg.steps:
            result, over_time = self._step(batches, started)
            self._count_bad(result)
            self._periodic_duties(result)
            if result.stop:
                return self.signal_name or ("time budget" if over_time else "stop requested by another process")
        return "done"

    def _step(self, batches, started: float):
        """One optimisation step on the next batch: (its result, whether the time budget was spent before it).
        ``stop=`` is this process's vote; ``result.stop`` is everyone's, so all processes stop at the same step."""
        content, style, bad = self._next_batch(batches)
        self.pending_bad += [r for b in bad for r in b.split("\n") if r]
        over_time = self.cfg.max_minutes > 0 and time.monotonic() - started > self.cfg.max_minutes * 60
        result = self.learner.step(self.step, self.learner.to_input(content), self.learner.to_input(style),
                                   stop=over_time or self.signal_name is not None)
        self.step += 1
        self.position += self.batch_images
        self.window.add(self.batch_images)
        return result, over_time

    def _count_bad(self, result) -> None:
        """A step with a non-finite loss or gradient was skipped: warn, and stop after too many in a row."""
        if result.ok:
            self.consecutive_bad = 0
            return
        self.bad_steps, self.consecutive_bad = self.bad_steps + 1, self.consecutive_bad + 1
        self.progress.say(f"dinstyle: warning: step {self.step}: non-finite loss or gradient; "
                          f"update skipped ({self.consecutive_bad} in a row)")
        if self.consecutive_bad >= self.cfg.max_bad_steps:
            self._log(result, self.window.rate(reset=True))
            raise DinstyleError(f"{self.consecutive_bad} non-finite steps in a row at step {self.step}: "
                                f"stopping (try a lower --lr; last checkpoint in {self.run_dir})")

    def _periodic_duties(self, result) -> None:
        """Progress after every step; log, samples and checkpoints at their intervals (the log also on the
        last, a stopping or a skipped step)."""
        cfg = self.cfg
        self.progress.update(result.terms, self.window.rate())
        if self.step % cfg.log_every == 0 or self.step == cfg.steps or result.stop or not result.ok:
            self._log(result, self.window.rate(reset=True))
        if cfg.sample_every and self.step % cfg.sample_every == 0:
            self._samples()
        if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
            self._checkpoint()

    def _finish(self, reason: str) -> TrainResult:
        if self.last_checkpoint != self.step:
            self._checkpoint()
        self._sync_skipped()
        if not self.info.main:
            barrier()
            return TrainResult(None, self.step, reason)
        if not (self.cfg.sample_every and self.step % self.cfg.sample_every == 0):
            self._samples()
        loss_curve(ckpt.read_log(self.run_dir / "log.jsonl"), self.run_dir / "loss.png")
        self.skipped.write(self.run_dir)
        if self.skipped.files:
            self.progress.say(f"dinstyle: skipped {len(self.skipped.files)} unusable image file(s); "
                              f"listed in {self.run_dir / 'skipped_files.txt'}")
        if reason != "done":
            self.progress.say(f"dinstyle: stopped at step {self.step} ({reason}); checkpoint written, "
                              f"continue with: dinstyle train --run {self.run_dir} --resume")
        barrier()
        return TrainResult(self.run_dir / "model.safetensors", self.step, reason)
