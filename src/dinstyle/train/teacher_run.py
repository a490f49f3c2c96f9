"""``dinstyle train --teacher magenta|init``: teacher-guided training, built for a small CPU.

What makes it fast on 2 cores (see docs/MODEL_CARD.md for the figures):
- every photo is decoded once into memory at a small short side; crops come from RAM, no workers;
- every style is prepared once: its encoder-backbone taps (fp16), the teacher's style vector and the
  loss net's statistics, so no step runs the frozen VGG on a style image;
- each step takes ``styles_per_step`` styles and ``contents_per_style`` photos for each: the weight and
  bias nets run once per style, not once per image;
- the teacher makes its targets on the fly (~15 ms per 128 px image).

A run folder holds config.toml, log.jsonl, samples/, checkpoint.pt (optimizer, step, RNG: resume is
exact) and model.safetensors (the latest weights, loadable by every dinstyle command).
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch

from ..backbones import Backbone
from ..backbones.vgg import pretrained_vgg19
from ..errors import DinstyleError, UsageError, first_line
from ..io.atomic import atomic_write
from ..io.holdout import split_files
from ..models import create_model, save_model
from ..models.registry import ARCHS, read_model_file
from ..models.stylecode import StyleCode
from .checkpoint import load_trainable, read_log, truncate_log
from .distill import LevelTaps, level_terms
from .learner import freeze_parameters
from .images import list_images
from .plot import loss_curve, sample_grid
from .teacher_config import TeacherConfig, to_toml
from .teacher import (TEACHER_CREDIT, ContentBank, TeacherLoss, TeacherLossWeights, build_style_bank,
                      make_teacher)

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1


def lr_at(cfg: TeacherConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``lr_final``: a pure function of the step (exact resume)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


class TeacherRun:
    def __init__(self, cfg: TeacherConfig, resume: bool = False, log=print):
        self.cfg, self.resume, self.say = cfg, resume, log
        self.run_dir = Path(cfg.run)
        self.stop_reason: str | None = None

    # ------------------------------------------------------------------ setup
    def _model(self, weights: Path | str | None):
        """The student, with ``weights`` loaded (the init file, or the run's own on resume) before anything is
        computed with it: the style bank caches the frozen encoder's taps, so they must be the trained ones."""
        cfg = self.cfg
        model_cfg = dict(cfg.model)
        if cfg.init and not self.resume:
            _, meta = read_model_file(cfg.init)
            if meta.get("arch") != cfg.arch:
                raise UsageError(f"--init {cfg.init} is a {meta.get('arch')} model, not {cfg.arch}")
            model_cfg = {**meta.get("config", {}), **model_cfg}
        if cfg.arch in ARCHS and "style_size" in {f.name for f in dataclasses.fields(ARCHS[cfg.arch][1])}:
            model_cfg["style_size"] = cfg.style_size  # adain has none: it is refused below, in words
        try:
            model = create_model(cfg.arch, **model_cfg)
        except (TypeError, ValueError) as e:
            raise UsageError(f"model {cfg.arch}: {e}") from None
        if not callable(getattr(model.style_encoder, "taps_of", None)):  # the style bank caches the encoder's frozen part
            raise UsageError(f"--teacher training needs a style encoder with a frozen part (din-fast, din-magenta, "
                             f"din-mobilenet-vgg, din-vgg); {cfg.arch} trains with the paper's recipe (no --teacher)")
        if weights:
            try:
                load_trainable(model, weights)
            except (KeyError, TypeError, ValueError, RuntimeError) as e:
                if not self.resume:
                    raise
                raise DinstyleError(f"{weights}: not usable to resume from ({first_line(e)})") from None
        return model

    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        state = self._read_checkpoint() if self.resume else None
        self.model = self._model(self.run_dir / state["model_file"] if state else cfg.init).train()
        freeze_parameters(self.model, cfg.freeze)
        self.cfg = cfg = dataclasses.replace(cfg, model={k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in dataclasses.asdict(self.model.config).items()})
        encoder = self.model.style_encoder
        self.teacher = make_teacher(cfg.teacher, cfg.init, threads=cfg.threads or None, model=cfg.teacher_model)
        files = {}
        for role in ("content", "style"):
            found = list_images(getattr(cfg, role)) if getattr(cfg, role) else []
            if not found:
                raise UsageError(f"--{role}: no images in {getattr(cfg, role)!r}")
            files[role], files[role + "_held"] = split_files(found)
        t0 = time.monotonic()
        self.styles = build_style_bank(files["style"], cfg.style_size, encoder.taps_of, self.teacher,
                                       cfg.max_pixels, self.say)
        self.contents = ContentBank(files["content"], cfg.content_short_side, cfg.max_pixels, self.say)
        self.say(f"dinstyle: {len(self.contents)} photos, {len(self.styles)} styles prepared in "
                 f"{time.monotonic() - t0:.0f} s (held out: {len(files['content_held'])} photos, "
                 f"{len(files['style_held'])} styles)")
        weights = TeacherLossWeights(cfg.feature_weight, cfg.stats_weight, cfg.pixel_weight, cfg.style_weight,
                                     cfg.identity_weight, cfg.identity_ssim_weight)
        needs_vgg = bool(cfg.feature_weight or cfg.stats_weight or cfg.style_weight or cfg.mid_alpha_weight)
        self.loss = TeacherLoss(loss_network(encoder) if needs_vgg else None, weights, cfg.feature_taps,
                                cfg.stats_taps, cfg.channels_last, cfg.pixel_scale)
        self.style_stats = None
        if cfg.style_weight:
            stats = [self.loss.style_stats(self.styles.images[i:i + 8].float() / 255) for i in range(0, len(self.styles), 8)]
            self.style_stats = {t: tuple(torch.cat([s[t][j] for s in stats]) for j in range(2)) for t in stats[0]}
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        offsets = [p for n, p in named if ".offset_" in n]
        groups = [{"params": [p for n, p in named if ".offset_" not in n], "lr_scale": 1.0}]
        if offsets:
            groups.append({"params": offsets, "lr_scale": cfg.offset_lr_scale})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr)
        self.rng = random.Random(cfg.seed)
        self.step = 0
        # Samples show held-out pairs (training files only when a folder has none held out).
        self._samples_setup(files["content_held"] or files["content"], files["style_held"] or files["style"])
        if state:
            self._restore(state)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        atomic_write(self.run_dir / "config.toml", lambda tmp: tmp.write_text(to_toml(cfg), encoding="utf-8"))

    def _samples_setup(self, contents, styles) -> None:
        """Four fixed held-out pairs, shown at twice the training size."""
        rng = random.Random(1234)
        size = 2 * self.cfg.size
        cbank = ContentBank(rng.sample(contents, min(4, len(contents))), size, self.cfg.max_pixels, self.say)
        sfiles = rng.sample(styles, min(4, len(styles)))
        sbank = build_style_bank(sfiles, self.cfg.style_size, self.model.style_encoder.taps_of, self.teacher,
                                 self.cfg.max_pixels, self.say)
        n = min(len(cbank), len(sbank))
        self.sample_content = cbank.crops(random.Random(0), n, size, (1.0, 1.0))
        self.sample_styles = sbank
        with torch.no_grad():
            self.sample_teacher = self.teacher.targets(self.sample_content, sbank.vectors[:n])

    # ------------------------------------------------------------------ state
    def _read_checkpoint(self) -> dict:
        path = self.run_dir / CHECKPOINT
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DinstyleError(f"{path}: no checkpoint to resume") from None
        except Exception as e:  # an empty or damaged file: EOFError, UnpicklingError, ... (one line each)
            raise DinstyleError(f"{path}: not a usable checkpoint ({first_line(e)})") from None
        version = state.get("version") if isinstance(state, dict) else None
        if version != CHECKPOINT_VERSION:
            raise DinstyleError(f"{path}: unknown checkpoint version {version!r}")
        if "model_file" not in state:
            raise DinstyleError(f"{path}: not a usable checkpoint (it names no model file)")
        return state

    def _restore(self, state: dict) -> None:
        """Optimizer, step and RNGs from ``state`` (the weights were loaded with the model)."""
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            self.rng.setstate(_tuplify(state["python_rng"]))
            torch.set_rng_state(state["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise DinstyleError(f"{self.run_dir / CHECKPOINT}: not a usable checkpoint ({first_line(e)})") from None
        truncate_log(self.run_dir / "log.jsonl", self.step)

    def _info(self) -> dict:
        c = self.cfg
        return {"step": self.step, "images_seen": self.step * c.styles_per_step * c.contents_per_style,
                "teacher": {"magenta": TEACHER_CREDIT, "init": f"frozen copy of {c.init}"}.get(c.teacher, c.teacher_model),
                "recipe": f"teacher-guided (dinstyle train --teacher {c.teacher})",
                "size": c.size, "style_size": c.style_size, "content_images": len(self.contents),
                "style_images": len(self.styles), "held_out": "sha256(file name) % 100 < 12",
                "loss": {k: getattr(c, k) for k in ("feature_weight", "stats_weight", "pixel_weight",
                                                     "style_weight", "identity_weight", "identity_ssim_weight",
                                                     "mid_alpha_weight", "distill_weight", "pixel_scale")},
                **({"offset_lr_scale": c.offset_lr_scale} if c.offset_lr_scale != 1.0 else {})}

    def checkpoint(self) -> None:
        model_file = "model.safetensors"
        save_model(self.model, self.run_dir / model_file, info=self._info())
        state = {"version": CHECKPOINT_VERSION, "step": self.step, "model_file": model_file,
                 "optimizer": self.optimizer.state_dict(), "python_rng": _listify(self.rng.getstate()),
                 "torch_rng": torch.get_rng_state(), "config": to_toml(self.cfg)}
        atomic_write(self.run_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))

    @torch.no_grad()
    def samples(self) -> None:
        m, n = self.model, len(self.sample_content)
        m.eval()
        try:
            code = StyleCode(m.style_encoder.from_taps({t: v[:n].float() for t, v in self.sample_styles.taps.items()}))
            outs = [m.stylize(self.sample_content, code, alpha=a) for a in (1.0, 0.0)]
        finally:
            m.train()
        u8 = lambda x: (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
        size = self.sample_content.shape[-1]
        styles = torch.nn.functional.interpolate(self.sample_styles.images[:n].float() / 255, size=(size, size),
                                                 mode="bilinear", antialias=True, align_corners=False)
        cols = [u8(self.sample_content), u8(styles), u8(outs[0]), u8(outs[1]), u8(self.sample_teacher)]
        sample_grid([[c[i] for c in cols] for i in range(n)], self.run_dir / "samples" / f"step-{self.step:07d}.png",
                    header=f"{self.cfg.arch}  step {self.step}  (held-out pairs)")

    # ------------------------------------------------------------------ one step
    def batch(self):
        c = self.cfg
        idx = self.rng.sample(range(len(self.styles)), c.styles_per_step)
        content = self.contents.crops(self.rng, c.styles_per_step * c.contents_per_style, c.size, c.crop_scale)
        per_image = np.repeat(np.array(idx), c.contents_per_style)
        if c.distill_weight:
            self.teacher.taps = LevelTaps(c.distill_levels)
        teacher = self.teacher.targets(content, self.styles.vectors[per_image])
        levels = self.teacher.taps.seen if c.distill_weight else None
        taps = {t: v[idx].float() for t, v in self.styles.taps.items()}
        return idx, content, teacher, taps, levels

    def train_step(self, idx, content, teacher, taps, teacher_levels=None) -> dict[str, float]:
        c = self.cfg
        lr = lr_at(c, self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)  # checkpoints from before the scale: one group
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=c.bf16):
            raw = self.model.style_encoder.from_taps(taps)
            code = StyleCode({k: v.repeat_interleave(c.contents_per_style, 0) for k, v in raw.items()})
            student_levels = LevelTaps(c.distill_levels) if teacher_levels is not None else None
            out = self.model.stylize(content, code, alpha=1.0, stats_fn=student_levels)
            identity = c.identity_weight or c.identity_ssim_weight
            recon = self.model.stylize(content, code, alpha=0.0) if identity else None
            stats = None
            if self.style_stats is not None:
                per = torch.tensor(idx).repeat_interleave(c.contents_per_style)
                stats = {t: (m[per], s[per]) for t, (m, s) in self.style_stats.items()}
            terms = self.loss(out, teacher, content, stats, recon)
            if student_levels is not None:
                terms["distill"] = c.distill_weight * level_terms(student_levels.seen, teacher_levels)
                terms["loss"] = terms["loss"] + terms["distill"]
            if c.mid_alpha_weight:
                terms.update(self._mid_alpha_terms(content, code, teacher))
                terms["loss"] = terms["loss"] + terms["mid_alpha"]
        loss = terms["loss"]
        if not torch.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            return {"loss": float("nan"), "lr": lr, "skipped": 1.0}
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, c.grad_clip if c.grad_clip > 0 else math.inf)
        self.optimizer.step()
        return {**{k: float(v.detach()) for k, v in terms.items()}, "lr": lr, "grad_norm": float(norm)}

    def _mid_alpha_terms(self, content, code, teacher) -> dict[str, torch.Tensor]:
        """At a random alpha in (0.1, 0.9), the output should be the crossfade of the two ends it is trained
        for (alpha x teacher + (1 - alpha) x photo): a model whose DIN levels run un-normalised at alpha=0
        (din-magenta) is otherwise never trained between them, and its 13 half-normalised levels compound."""
        a = 0.1 + 0.8 * self.rng.random()
        mid = self.model.stylize(content, code, alpha=a)
        target = a * teacher + (1 - a) * content
        terms = self.loss(mid, target, content)
        return {"mid_alpha": self.cfg.mid_alpha_weight * terms["loss"]}

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, _frame) -> None:
        self.stop_reason = signal.Signals(signum).name
        signal.signal(signum, signal.SIG_DFL)

    def run(self) -> Path:
        self.setup()
        cfg = self.cfg
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        started, window_t, window_n, last_ckpt = time.monotonic(), time.monotonic(), 0, self.step
        per_step = cfg.styles_per_step * cfg.contents_per_style
        log_path = self.run_dir / "log.jsonl"
        try:
            with open(log_path, "a", encoding="utf-8") as log:
                while self.step < cfg.steps and self.stop_reason is None:
                    terms = self.train_step(*self.batch())
                    self.step += 1
                    window_n += per_step
                    if self.step % cfg.log_every == 0:
                        rate = window_n / (time.monotonic() - window_t)
                        window_t, window_n = time.monotonic(), 0
                        log.write(json.dumps({"step": self.step, "images": self.step * per_step, **terms,
                                              "images_per_s": rate,
                                              "minutes": (time.monotonic() - started) / 60}) + "\n")
                        log.flush()
                        self.say(f"step {self.step} loss {terms['loss']:.4f} " + " ".join(
                            f"{k} {v:.4f}" for k, v in terms.items() if k not in ("loss", "lr")) + f" {rate:.1f} img/s")
                    if cfg.sample_every and self.step % cfg.sample_every == 0:
                        self.samples()
                    if self.step % cfg.checkpoint_every == 0:
                        self.checkpoint()
                        last_ckpt = self.step
                    if cfg.max_minutes and time.monotonic() - started > cfg.max_minutes * 60:
                        self.stop_reason = "time budget"
            if last_ckpt != self.step:
                self.checkpoint()
            self.samples()
            loss_curve(read_log(log_path), self.run_dir / "loss.png")
            half = self.run_dir / "model-fp16.safetensors"
            save_model(self.model, half, info=self._info(), half=True)
            self.say(f"dinstyle: stopped at step {self.step} ({self.stop_reason or 'done'}); wrote {half}")
            return half
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)


def loss_network(encoder) -> Backbone:
    """The style encoder's frozen backbone doubles as the loss network (one copy in memory); an encoder
    without one (din-magenta's MobileNetV2 predictor, which trains with it) gets the pretrained VGG-19."""
    backbone = getattr(encoder, "backbone", None)
    return backbone if isinstance(backbone, Backbone) else pretrained_vgg19().freeze()


def _listify(x):
    return [_listify(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (tuple, list)) else x
