"""``train(cfg)``: the one training loop, for every objective (the paper's losses, teacher-guided) and data source.

It reads top to bottom: ``Run`` sets up the run folder, the model (from the checkpoint, the init file, or fresh),
the data source and objective (``objectives.make_objective``) and the learner; ``_loop`` steps, logs, draws
samples and checkpoints at their intervals; ``Run.finish`` writes what a finished or stopped run leaves. SIGINT and
SIGTERM (``StopSignals``, the one signal path) and the time budget stop it after the current step, with a
checkpoint. Step numbers count finished optimisation steps: the log entry for step k holds the loss of the k-th
batch, and a checkpoint at step k resumes with batch k+1.
"""
from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DinstyleError, UsageError
from ..io.atomic import atomic_write
from ..models import save_model
from . import checkpoint as ckpt
from .config import TrainConfig, to_dict, to_toml
from .distributed import barrier, gather_lists, init_distributed, shutdown_distributed
from .learner import Learner, StepResult, build_model
from .objectives import make_objective
from .plot import loss_curve, sample_grid
from .reporting import LogWriter, Progress, SkippedFiles, Throughput

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
    dist, device = init_distributed(cfg.device)
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        run = Run(cfg, resume, dist, device)
        try:
            with StopSignals() as stop:
                return run.finish(_loop(run, stop))
        finally:
            run.close()
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
        shutdown_distributed()


def _loop(run: "Run", stop: "StopSignals") -> str:
    """Steps until ``cfg.steps`` or a stop; returns the reason."""
    cfg, started = run.cfg, time.monotonic()
    while run.step < cfg.steps:
        batch = run.data.next()
        over_time = cfg.max_minutes > 0 and time.monotonic() - started > cfg.max_minutes * 60
        # stop= is this process's vote; result.stop is everyone's, so all processes stop at the same step
        result = run.learner.step(run.step, batch, stop=over_time or stop.name is not None)
        run.step += 1
        run.window.add(run.data.batch_images)
        run.count_bad(result)
        run.progress.update(result.terms, run.window.rate())
        if run.step % cfg.log_every == 0 or run.step == cfg.steps or result.stop or not result.ok:
            run.write_log(result)
        if cfg.sample_every and run.step % cfg.sample_every == 0:
            run.samples()
        if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
            run.checkpoint()
        if result.stop:
            return stop.name or ("time budget" if over_time else "stop requested by another process")
    return "done"


class StopSignals:
    """The one signal path of training: SIGINT and SIGTERM ask the loop to finish the current step and checkpoint
    (a second one is not polite any more: default behaviour). On the way out the handlers in place before come back
    (the CLI's ``io.atomic.sigterm_as_interrupt``). Only the main thread may set them; elsewhere nothing is caught."""

    def __enter__(self) -> "StopSignals":
        self.name: str | None = None
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _on_signal(self, signum, _frame) -> None:
        self.name = signal.Signals(signum).name
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    def __exit__(self, *exc) -> None:
        for s, h in self.saved.items():
            signal.signal(s, h)


class Run:
    """What the loop works with: the config, model, data source, objective and learner, the step, and the run's
    outputs (log, progress, samples, checkpoints), written by the main process only."""

    def __init__(self, cfg: TrainConfig, resume: bool, dist, device: torch.device):
        self.resume, self.dist, self.run_dir = resume, dist, Path(cfg.run)
        # 1. the run folder: a new run needs a free one, a resumed one its checkpoint (older formats refused)
        ckpt.check_run_dir(self.run_dir, resume)
        state = ckpt.load_checkpoint(self.run_dir) if resume else None
        barrier()  # every process has looked before the main one writes
        ckpt.seed_everything(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        # 2. the model: the checkpoint's weights, the init file's, or fresh; then what trains it
        self.cfg, self.model = build_model(cfg, device, self.run_dir / state["model_file"] if state else None)
        self.data, self.objective = make_objective(self.cfg, self.model, dist, device, self.say)
        self.learner = Learner(self.cfg, self.model, self.objective, device, dist)
        # 3. where it stands
        self.step, self.bad_steps, skipped = 0, 0, {}
        if state is not None:
            self.step, self.bad_steps, skipped = ckpt.restore(state, self.run_dir, self.learner, self.data)
        self.skipped, self.consecutive_bad, self.window = SkippedFiles(skipped), 0, Throughput()
        self.last_checkpoint = self.step if resume else -1
        self._prepare_folder()
        self.progress = Progress(self.cfg.steps, self.step, enabled=dist.main and self.cfg.progress)
        self.log = LogWriter(self.run_dir / "log.jsonl" if dist.main else None)

    def say(self, message: str) -> None:
        if self.dist.main:
            print(message, file=sys.stderr, flush=True)

    def _prepare_folder(self) -> None:
        if self.dist.main:
            if self.resume:
                ckpt.truncate_log(self.run_dir / "log.jsonl", self.step)
            else:  # what a run that stopped before its first checkpoint left (``check_run_dir`` let it be reused)
                ckpt.clear_unstarted(self.run_dir)
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / "config.toml", lambda tmp: tmp.write_text(to_toml(self.cfg), encoding="utf-8"))
        barrier()

    def close(self) -> None:
        self.progress.close()
        self.log.close()

    # ------------------------------------------------------------------ what the loop calls
    def count_bad(self, result: StepResult) -> None:
        """A step with a non-finite loss or gradient was skipped: warn, and stop after too many in a row."""
        if result.ok:
            self.consecutive_bad = 0
            return
        self.bad_steps, self.consecutive_bad = self.bad_steps + 1, self.consecutive_bad + 1
        self.progress.say(f"dinstyle: warning: step {self.step}: non-finite loss or gradient; "
                          f"update skipped ({self.consecutive_bad} in a row)")
        if self.consecutive_bad >= self.cfg.max_bad_steps:
            self.write_log(result)
            raise DinstyleError(f"{self.consecutive_bad} non-finite steps in a row at step {self.step}: "
                                f"stopping (try a lower --lr; last checkpoint in {self.run_dir})")

    def _sync_skipped(self) -> None:
        """Collect every process's new bad-file records (all processes call this at the same steps)."""
        records = gather_lists(self.data.take_bad())
        if self.dist.main:
            self.skipped.add(records, self.progress.say)

    def write_log(self, result: StepResult) -> None:
        self._sync_skipped()
        rate = self.window.rate(reset=True)
        if self.dist.main:
            entry = {"step": self.step, **result.terms, "lr": result.lr, "grad_norm": result.grad_norm,
                     "images_per_s": rate, "skipped_files": len(self.skipped.files), "bad_steps": self.bad_steps}
            if not result.ok:
                entry["update_skipped"] = True
            self.log.write(entry)
            self.progress.line(self.step, result.terms, result.lr, rate)

    def model_info(self) -> dict:
        c, images = self.cfg, self.data.batch_images
        return {"step": self.step, "steps": c.steps, "run": self.run_dir.name, "size": c.size, "batch_size": images,
                "images_seen": self.step * images, "seed": c.seed, **self.data.info, **self.objective.info}

    def checkpoint(self) -> None:
        """The model file, model.safetensors (a copy: the latest weights), then checkpoint.pt naming the file."""
        self._sync_skipped()
        self.last_checkpoint = self.step
        if not self.dist.main:
            return
        model_file = ckpt.model_file_name(self.step)
        (self.run_dir / ckpt.CHECKPOINT_DIR).mkdir(exist_ok=True)
        save_model(self.model, self.run_dir / model_file, info=self.model_info())
        atomic_write(self.run_dir / "model.safetensors", lambda tmp: shutil.copyfile(self.run_dir / model_file, tmp))
        extra = {"config": to_dict(self.cfg), "skipped_files": dict(self.skipped.files), "bad_steps": self.bad_steps,
                 "world_size": self.dist.world}
        ckpt.save_state(self.run_dir, self.step, model_file, self.learner, self.data, extra, self.cfg.keep_checkpoints)

    @torch.no_grad()
    def samples(self) -> None:
        """content | style | output | alpha=0 (| the teacher's output) for the fixed held-out pairs."""
        contents, styles = self.data.samples
        if not self.dist.main or not contents:
            return
        to = lambda arrs: self.learner.to_device(torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2))  # noqa: E731
        content, style = to(contents), to(styles)
        self.model.eval()
        try:
            with self.learner.autocast():
                code = self.model.encode_style(style)
                outs = [self.model.stylize(content, code, alpha=a) for a in (1.0, 0.0)]
            extra = self.objective.sample_column(content, styles)
        finally:
            self.model.train()
        u8 = [(o.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
              for o in outs + ([extra] if extra is not None else [])]
        h, w = contents[0].shape[:2]  # styles shown at the photos' size
        shown = [s if s.shape[:2] == (h, w) else np.asarray(Image.fromarray(s).resize((w, h), Image.BILINEAR))
                 for s in styles]
        rows = [[c, s] + [u[i] for u in u8] for i, (c, s) in enumerate(zip(contents, shown))]
        sample_grid(rows, self.run_dir / "samples" / f"step-{self.step:08d}.png",
                    header=f"{self.cfg.arch}  step {self.step}")

    def finish(self, reason: str) -> TrainResult:
        """A last checkpoint and samples, the fp16 model file, the loss curve and the skipped-files list."""
        if self.last_checkpoint != self.step:
            self.checkpoint()
        self._sync_skipped()
        if not self.dist.main:
            barrier()
            return TrainResult(None, self.step, reason)
        if not (self.cfg.sample_every and self.step % self.cfg.sample_every == 0):
            self.samples()
        save_model(self.model, self.run_dir / "model-fp16.safetensors", info=self.model_info(), half=True)
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
