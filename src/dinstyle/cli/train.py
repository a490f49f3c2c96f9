"""`dinstyle train`: every TrainConfig field is a flag; --config FILE.toml sets them too (flags win)."""
from __future__ import annotations

import argparse
import dataclasses
import sys

METAVARS = {"content": "DIR", "style": "DIR", "run": "RUN_DIR", "init": "MODEL_FILE", "arch": "NAME",
            "style_encoder": "NAME", "loss_net": "NAME", "content_loss_net": "NAME", "style_loss_net": "NAME",
            "device": "DEVICE", "precision": "P"}


def _tuple_of(kind: type):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x) for x in text.replace(" ", "").split(",") if x)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None
    return parse


def register(sub) -> None:
    from ..train.config import TrainConfig, element_type
    from ..train.teacher_config import FIELDS as TEACHER_FIELDS
    from ..train.teacher_config import TEACHERS

    p = sub.add_parser("train", help="train a model on folders of content and style images (resumable, DDP)",
                       description="Train a style-transfer model. Every option can also be set in a TOML file "
                                   "(--config); see docs/TRAINING.md. Multi-GPU: torchrun --nproc_per_node N "
                                   "-m dinstyle train --run-dir RUN_DIR ...")
    p.add_argument("--config", metavar="FILE.toml", help="settings file (command-line flags override it)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run from its last checkpoint")
    p.add_argument("--teacher", choices=TEACHERS, default=argparse.SUPPRESS,
                   help="teacher-guided training (fast on CPUs; see docs/TRAINING.md): the student learns the "
                        "teacher's outputs in VGG features; the flags marked [teacher] apply. magenta: Magenta's "
                        "int8 network; init: a frozen copy of the --init model (fine-tuning that keeps its outputs)")
    for f in dataclasses.fields(TrainConfig):
        if not f.metadata.get("cli", True):
            continue
        flag, default = "--" + f.name.replace("_", "-"), f.default
        shown = f" (default: {default!r})" if default not in ("", ()) else ""
        extra = "; alias --run-dir (use it under torchrun)" if f.name == "run" else ""
        kw = dict(dest=f.name, default=argparse.SUPPRESS, help=f"{f.metadata['help']}{extra}{shown}")
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(default, tuple):
            p.add_argument(flag, type=_tuple_of(element_type(default)), metavar="A,B", **kw)
        else:
            # --run-dir: torchrun's own parser takes '--run' for an abbreviation of its --run-path
            flags = [flag, "--run-dir"] if f.name == "run" else [flag]
            p.add_argument(*flags, type=type(default), metavar=METAVARS.get(f.name, f.name.split("_")[-1].upper()), **kw)
    for name, f in TEACHER_FIELDS.items():  # teacher-only settings (shared names keep their meaning)
        if name == "teacher" or name in {g.name for g in dataclasses.fields(TrainConfig)}:
            continue
        flag, default = "--" + name.replace("_", "-"), f.default
        kw = dict(dest=name, default=argparse.SUPPRESS, help=f"[teacher] (default: {default!r})")
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(default, tuple):
            p.add_argument(flag, type=_tuple_of(element_type(default)), metavar="A,B", **kw)
        else:
            p.add_argument(flag, type=type(default), **kw)
    p.set_defaults(func=run)


def run_teacher(args, flags: dict) -> int:
    """``--teacher``: the settings are TeacherConfig's; a flag only the paper's recipe knows is an error."""
    from pathlib import Path

    from ..errors import UsageError
    from ..train.checkpoint import clear_unstarted, never_checkpointed
    from ..train.teacher_config import FIELDS, RESUMABLE, make_config, read_toml, to_dict
    from ..train.teacher_run import TeacherRun

    unknown = sorted(k for k in flags if k not in FIELDS)
    if unknown:
        raise UsageError(f"--teacher does not use {', '.join('--' + k.replace('_', '-') for k in unknown)}")
    layers = [read_toml(args.config)] if args.config else []
    if args.resume:
        if not flags.get("run"):
            raise UsageError("--resume needs --run RUN_DIR")
        saved_path = Path(flags["run"]) / "config.toml"
        if not saved_path.is_file():
            raise UsageError(f"{flags['run']}: not a training run (no config.toml); nothing to resume")
        saved = read_toml(saved_path)
        current = to_dict(make_config(saved))
        proposed = to_dict(make_config({**saved, **{k: v for layer in layers for k, v in layer.items()}, **flags}))
        changed = sorted(k for k in proposed if proposed[k] != current[k] and k not in RESUMABLE)
        if changed:
            raise UsageError(f"--resume cannot change {', '.join(changed)}; start a new run (optionally with --init)")
        cfg = make_config(proposed)
    else:
        merged = {k: v for layer in layers for k, v in layer.items()}
        cfg = make_config({**merged, **flags})
        if not cfg.run:
            raise UsageError("--run RUN_DIR is required")
        run_dir = Path(cfg.run)
        if run_dir.is_dir() and any(run_dir.iterdir()) and not never_checkpointed(run_dir):
            raise UsageError(f"{run_dir}: not empty; continue a run with --resume or choose another --run")
        clear_unstarted(run_dir)  # a run that stopped before its first checkpoint: reused (train/checkpoint.py)
    result = TeacherRun(cfg, resume=args.resume, log=lambda m: print(m, file=sys.stderr, flush=True)).run()
    print(result)
    return 0


def run(args) -> int:
    from pathlib import Path

    from ..errors import UsageError
    from ..train.config import FIELDS, load_toml, read_toml, resolve, resume_overrides
    from ..train.loop import train

    run_dir = getattr(args, "run", "")
    saved = Path(run_dir) / "config.toml" if args.resume and run_dir else None
    # A config or run folder written by a teacher run says so (teacher = "magenta"): no need to repeat --teacher.
    if (getattr(args, "teacher", None) or (args.config and "teacher" in load_toml(args.config))
            or (saved is not None and saved.is_file() and "teacher" in load_toml(saved))):
        return run_teacher(args, {k: v for k, v in vars(args).items()
                                  if k not in ("config", "resume", "func", "command")})
    teacher_only = sorted(k for k in vars(args) if k not in FIELDS and k not in ("config", "resume", "func", "command"))
    if teacher_only:
        raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in teacher_only)}: only with --teacher")
    flags = {k: v for k, v in vars(args).items() if k in FIELDS}
    file_layer = read_toml(args.config) if args.config else {}
    if args.resume:
        run_dir = flags.get("run") or file_layer.get("run")
        if not run_dir:
            raise UsageError("--resume needs --run RUN_DIR")
        saved_path = Path(run_dir) / "config.toml"
        if not saved_path.is_file():
            raise UsageError(f"{run_dir}: not a training run (no config.toml); nothing to resume")
        cfg = resume_overrides(resolve(read_toml(saved_path)), file_layer, {**flags, "run": run_dir})
    else:
        cfg = resolve(file_layer, flags)
    result = train(cfg, resume=args.resume)
    if result.model_path is not None:
        print(result.model_path)
    return result.exit_code
