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
from ..models import StyleTransferNet
from ..weights import WeightsError, atomic_write, load_safetensors

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


def load_checkpoint(run_dir: Path) -> dict:
    """The training state of a run; one-line errors for a missing or unreadable checkpoint."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise DinstyleError(f"{run_dir}: no {CHECKPOINT} to resume from (was a checkpoint written?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise DinstyleError(f"{path}: unreadable checkpoint ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise DinstyleError(f"{path}: not a dinstyle training checkpoint")
    return state


def load_trainable(model: StyleTransferNet, path: str | Path) -> dict:
    """Load a model file's weights into ``model`` (same arch/config); returns the file's metadata."""
    tensors, meta = load_safetensors(path)
    expected = model.trainable_state_dict()
    missing, extra = expected.keys() - tensors.keys(), tensors.keys() - expected.keys()
    if missing or extra:
        raise WeightsError(f"{path}: weights do not match this {model.arch} model "
                           f"(missing {len(missing)}, unexpected {len(extra)})")
    for k, v in tensors.items():
        if v.shape != expected[k].shape:
            raise WeightsError(f"{path}: {k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=False)
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
