"""Training state on disk: ``checkpoint.pt`` (optimizer, schedule, RNG states, data position, step,
config) + the model weights it points to (safetensors under ``checkpoints/``).

Order of writes makes every crash point safe: the model file first, then ``checkpoint.pt`` (atomic
rename) naming it, then old model files are pruned. ``checkpoint.pt`` holds only tensors, numbers,
strings, lists and dicts, so ``torch.load(weights_only=True)`` reads it.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import DinstyleError
from ..io.atomic import atomic_write
from ..models import StyleTransferNet
from ..models.registry import load_weights, read_model_file

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_DIR = "checkpoints"
FORMAT_VERSION = 1


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


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """A new run (not ``resume``) goes into a folder that does not exist or is empty (hidden files aside):
    training writes model.safetensors, log.jsonl, loss.png, samples/ and checkpoints/ there, replacing and
    pruning what it finds, so a folder holding anything else (or another run) is refused."""
    if run_dir.exists() and not run_dir.is_dir():
        raise DinstyleError(f"{run_dir}: exists and is not a folder")
    if resume or not run_dir.is_dir():
        return
    if (run_dir / CHECKPOINT).exists() or (run_dir / "config.toml").exists():
        raise DinstyleError(f"{run_dir}: already holds a run; continue it with --resume or choose another --run")
    found = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
    if found:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise DinstyleError(f"{run_dir}: is not empty ({shown}) and not a training run; a new run needs a new or "
                            "empty folder for --run (training replaces and deletes files in it)")


# what a resumed run reads from checkpoint.pt (Learner.state_dict adds 'optimizer' and 'scheduler')
REQUIRED = {"step": int, "sample_position": int, "model_file": str, "optimizer": dict, "scheduler": dict, "rng": dict}


def load_checkpoint(run_dir: Path) -> dict:
    """The training state of a run; one-line errors for a missing, unreadable or incomplete checkpoint."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise DinstyleError(f"{run_dir}: no {CHECKPOINT} to resume from (was a checkpoint written?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise DinstyleError(f"{path}: unreadable checkpoint ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise DinstyleError(f"{path}: not a dinstyle training checkpoint")
    missing = [k for k, kind in REQUIRED.items() if not isinstance(state.get(k), kind) or isinstance(state.get(k), bool)]
    if isinstance(state.get("rng"), dict):
        missing += [f"rng.{k}" for k in ("torch", "numpy", "python") if k not in state["rng"]]
    if missing:
        raise DinstyleError(f"{path}: incomplete checkpoint (missing or malformed: {', '.join(missing)}); "
                            "resume from another run or start a new one")
    return state


def restore(state: dict, run_dir: Path, model: StyleTransferNet, learner) -> tuple[int, int, int, dict]:
    """Put a checkpoint's weights, optimizer, schedule and RNG states back; returns (step, sample position,
    bad steps, skipped files). A checkpoint that does not fit this run is a one-line error naming it."""
    load_trainable(model, run_dir / state["model_file"])
    try:
        learner.load_state_dict(state)
        set_rng_state(state["rng"])
        skipped = dict(state.get("skipped_files", {}))
        return int(state["step"]), int(state["sample_position"]), int(state.get("bad_steps", 0)), skipped
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        msg = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise DinstyleError(f"{run_dir / CHECKPOINT}: does not fit this run ({type(e).__name__}: {msg})") from None


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
