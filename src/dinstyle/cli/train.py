"""`dinstyle train`: every TrainConfig field is a flag; --config FILE.toml sets them too (flags win)."""
from __future__ import annotations

import argparse
import dataclasses

METAVARS = {"content": "DIR", "style": "DIR", "run": "RUN_DIR", "init": "MODEL_FILE", "arch": "NAME",
            "style_encoder": "NAME", "loss_net": "NAME", "content_loss_net": "NAME", "style_loss_net": "NAME",
            "device": "DEVICE", "precision": "P", "teacher_model": "MODEL", "styles_per_step": "N",
            "contents_per_style": "N", "keep_checkpoints": "N", "max_bad_steps": "N", "sample_count": "N"}
TAGS = {"paper": "[paper] ", "teacher": "[teacher] ", "all": ""}


def _tuple_of(kind: type):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x) for x in text.replace(" ", "").split(",") if x)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None
    return parse


def _help(f: dataclasses.Field) -> str:
    default, extra = f.default, ""
    if f.name == "run":
        extra = "; alias --run-dir (use it under torchrun)"
    shown = f" (default: {default!r}" if default not in ("", (), 0) or isinstance(default, float) else ""
    if shown and "teacher" in f.metadata:
        shown += f"; with a teacher: {f.metadata['teacher']!r}"
    return f"{TAGS[f.metadata['used']]}{f.metadata['help']}{extra}{shown + ')' if shown else ''}"


def register(sub) -> None:
    from ..train.config import TrainConfig, element_type

    p = sub.add_parser("train", help="train a model on folders of content and style images (resumable, DDP)",
                       description="Train a style-transfer model: with the paper's losses, or guided by a teacher "
                                   "(--teacher; the settings marked [teacher] apply, those marked [paper] do not). "
                                   "Every option can also be set in a TOML file (--config); see docs/TRAINING.md. "
                                   "Multi-GPU: torchrun --nproc_per_node N -m dinstyle train --run-dir RUN_DIR ...")
    p.add_argument("--config", metavar="FILE.toml", help="settings file (command-line flags override it)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run from its last checkpoint")
    for f in dataclasses.fields(TrainConfig):
        if not f.metadata.get("cli", True):
            continue
        flag, default = "--" + f.name.replace("_", "-"), f.default
        kw = dict(dest=f.name, default=argparse.SUPPRESS, help=_help(f))
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(default, tuple):
            p.add_argument(flag, type=_tuple_of(element_type(default)), metavar="A,B", **kw)
        elif "choices" in f.metadata:
            p.add_argument(flag, choices=f.metadata["choices"], **kw)
        else:
            # --run-dir: torchrun's own parser takes '--run' for an abbreviation of its --run-path
            flags = [flag, "--run-dir"] if f.name == "run" else [flag]
            p.add_argument(*flags, type=type(default), metavar=METAVARS.get(f.name, f.name.split("_")[-1].upper()), **kw)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..errors import UsageError
    from ..train.config import FIELDS, read_toml, resolve, resume_overrides
    from ..train.loop import train

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
