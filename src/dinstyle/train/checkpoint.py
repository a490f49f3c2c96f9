"""Training state on disk, one format for every objective: ``checkpoint.pt`` (optimizer, RNG states, the data
source's position, step, config) + the model weights it points to (safetensors under ``checkpoints/``).

Order of writes makes every crash point safe: the model file first, then ``checkpoint.pt`` (atomic
rename) naming it, then old model files are pruned. ``checkpoint.pt`` holds only tensors, numbers,
strings, lists and dicts, so ``torch.load(weights_only=True)`` reads it. Checkpoints of the two earlier
trainers (the paper's, format 1, and the teacher's, ``version`` 1) are refused in one line that says how to go on
from their weights (``--init``).
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..errors import DinstyleError, first_line
from ..io.atomic import atomic_write
from ..models import StyleTransferNet
from ..models.registry import load_weights, read_model_file

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_DIR = "checkpoints"
FORMAT_VERSION = 2


def rng_state() -> dict:
    """torch, CUDA, NumPy and Python RNG states as plain tensors/lists."""
    keys, pos, has_gauss, cached = np.random.get_state()[1:]
    version, py_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss_next"]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def model_file_name(step: int) -> str:
    return f"{CHECKPOINT_DIR}/model-{step:08d}.safetensors"


def save_checkpoint(run_dir: Path, state: dict, keep: int) -> Path:
    """Atomically write ``checkpoint.pt`` (``state['model_file']`` must already exist), then prune."""
    path = run_dir / CHECKPOINT
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    current = (run_dir / state["model_file"]).resolve()
    files = sorted((run_dir / CHECKPOINT_DIR).glob("model-*.safetensors"))
    older = [f for f in files if f.resolve() != current]
    for f in older[: max(0, len(older) - (keep - 1))]:
        f.unlink(missing_ok=True)
    return path


# What a run writes before its first checkpoint (the teacher recipe too). A run that stopped before one
# (a content folder of corrupt images fails at the first batch) leaves only these: nothing to resume, so a new
# run may reuse the folder (``never_checkpointed``) instead of leaving one that can be neither reused nor resumed.
EARLY_FILES = {"config.toml", "log.jsonl", "loss.png", "skipped_files.txt"}
EARLY_DIRS = {"samples": ".png", CHECKPOINT_DIR: None}  # folder -> the files it may hold (None: none)


def never_checkpointed(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that stopped before its first checkpoint: a config.toml, no
    checkpoint.pt, and nothing but what a run writes before one (no weights, nothing of the user's)."""
    if not (run_dir / "config.toml").is_file() or (run_dir / CHECKPOINT).exists():
        return False
    for p in run_dir.iterdir():
        if p.name.startswith(".") or (p.name in EARLY_FILES and p.is_file()):
            continue
        if p.name not in EARLY_DIRS or not p.is_dir() or p.is_symlink():
            return False
        suffix = EARLY_DIRS[p.name]
        if any(suffix is None or f.suffix != suffix or not f.is_file() for f in p.iterdir()):
            return False
    return True


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """A new run (not ``resume``) goes into a folder that does not exist, is empty (hidden files aside) or
    holds a run that never wrote a checkpoint (``never_checkpointed``; ``clear_unstarted`` empties it):
    training writes model.safetensors, log.jsonl, loss.png, samples/ and checkpoints/ there, replacing and
    pruning what it finds, so a folder holding anything else (or another run) is refused."""
    if run_dir.exists() and not run_dir.is_dir():
        raise DinstyleError(f"{run_dir}: exists and is not a folder")
    if resume or not run_dir.is_dir() or never_checkpointed(run_dir):
        return
    if (run_dir / CHECKPOINT).exists() or (run_dir / "config.toml").exists():
        raise DinstyleError(f"{run_dir}: already holds a run; continue it with --resume or choose another --run")
    found = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
    if found:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise DinstyleError(f"{run_dir}: is not empty ({shown}) and not a training run; a new run needs a new or "
                            "empty folder for --run (training replaces and deletes files in it)")


def clear_unstarted(run_dir: Path) -> None:
    """Remove what a run that never wrote a checkpoint left in ``run_dir`` (the main process, before a new
    run writes there): its log and samples would otherwise mix with the new run's."""
    if not (run_dir.is_dir() and never_checkpointed(run_dir)):
        return
    for p in run_dir.iterdir():
        if p.name in EARLY_DIRS:
            shutil.rmtree(p)
        elif p.name in EARLY_FILES:
            p.unlink()


# what a resumed run reads from checkpoint.pt
REQUIRED = {"step": int, "model_file": str, "optimizer": dict, "rng": dict, "data": dict}


def _older_format(state: dict) -> str | None:
    """Which earlier trainer wrote ``state``, if one did."""
    if state.get("format_version") == 1:
        return "the paper's trainer, format 1"
    if "format_version" not in state and state.get("version") == 1:
        return "the teacher trainer, format 1"
    return None


def load_checkpoint(run_dir: Path) -> dict:
    """The training state of a run; one-line errors for a missing, unreadable, older or incomplete checkpoint."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        if never_checkpointed(run_dir):
            raise DinstyleError(f"{run_dir}: this run stopped before its first checkpoint, so there is nothing to "
                                "resume; start it again without --resume (the folder is reused)")
        raise DinstyleError(f"{run_dir}: no {CHECKPOINT} to resume from (was a checkpoint written?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise DinstyleError(f"{path}: unreadable checkpoint ({first_line(e)})") from None
    if not isinstance(state, dict):
        raise DinstyleError(f"{path}: not a dinstyle training checkpoint")
    older = _older_format(state)
    if older:
        weights = run_dir / (state.get("model_file") if isinstance(state.get("model_file"), str) else "model.safetensors")
        raise DinstyleError(f"{path}: written by an older dinstyle ({older}), which cannot be resumed; continue from "
                            f"its weights in a new run: --init {weights} (init = \"{weights}\" in a config file)")
    if state.get("format_version") != FORMAT_VERSION:
        raise DinstyleError(f"{path}: not a dinstyle training checkpoint")
    missing = [k for k, kind in REQUIRED.items() if not isinstance(state.get(k), kind) or isinstance(state.get(k), bool)]
    if isinstance(state.get("rng"), dict):
        missing += [f"rng.{k}" for k in ("torch", "numpy", "python") if k not in state["rng"]]
    if missing:
        raise DinstyleError(f"{path}: incomplete checkpoint (missing or malformed: {', '.join(missing)}); "
                            "resume from another run or start a new one")
    return state


def save_state(run_dir: Path, step: int, model_file: str, learner, data, extra: dict, keep: int) -> Path:
    """``checkpoint.pt`` for ``step`` (``model_file`` already written): the one format every objective writes."""
    state = {"format_version": FORMAT_VERSION, "step": step, "model_file": model_file, **learner.state_dict(),
             "rng": rng_state(), "data": data.state_dict(), **extra}
    return save_checkpoint(run_dir, state, keep)


def restore(state: dict, run_dir: Path, learner, data) -> tuple[int, int, dict]:
    """Put a checkpoint's optimizer, RNG states and data position back (the weights were loaded with the model);
    returns (step, bad steps, skipped files). A checkpoint that does not fit this run is a one-line error."""
    try:
        learner.load_state_dict(state)
        data.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        skipped = dict(state.get("skipped_files", {}))
        return int(state["step"]), int(state.get("bad_steps", 0)), skipped
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise DinstyleError(f"{run_dir / CHECKPOINT}: does not fit this run "
                            f"({type(e).__name__}: {first_line(e, 160)})") from None


def load_trainable(model: StyleTransferNet, path: str | Path) -> dict:
    """Load a model file's weights into ``model`` (same arch/config); returns the file's metadata."""
    tensors, meta = read_model_file(path)
    load_weights(model, tensors, path, f"this {model.arch} model")
    return meta


def read_log(path: Path) -> list[dict]:
    """The entries of a log.jsonl (a torn last line from a crash is ignored)."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def truncate_log(path: Path, step: int) -> None:
    """Drop entries written after the checkpoint we resume from: the resumed run writes them again."""
    kept = [e for e in read_log(path) if isinstance(e, dict) and e.get("step", 0) <= step]
    atomic_write(path, lambda tmp: tmp.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8"))
