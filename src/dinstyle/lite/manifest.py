"""The exported model directory's ``manifest.json``: written by ``dinstyle export onnx``, read by the runtime.

Kept free of torch so both sides share the names and the checks. A model directory may come from anyone, so
the manifest is checked before anything uses it (``check_manifest``): every field's type and range (sizes
drive allocations: an absurd ``min_size`` would pad every image to gigapixels), and every graph file must lie
inside the directory (``graph_path``: no ``../x.onnx``, absolute path or symlink leading out of it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DinstyleError

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "dinstyle-onnx"
MANIFEST_VERSION = 1
REQUIRED_KEYS = ("arch", "model_id", "code_keys", "code_inputs", "style_encoder", "content", "style_size",
                 "pad_multiple", "min_size")
MAX_MANIFEST_BYTES = 1 << 20  # an export's is ~3 KB; more is not a manifest (and is not read into memory)
# (low, high) of the integer fields; 0 style_size = the style image as it is. Far above any real export
# (pad_multiple 8, min_size 16, min_style_size 64, style_size 256..512), far below a memory problem.
INT_RANGES = {"style_size": (0, 8192), "reference_size": (16, 65536), "pad_multiple": (1, 256), "min_size": (1, 1024),
              "min_style_size": (1, 4096)}
MAX_CODE_KEYS = 1024
MAX_CODE_DIM = 1 << 20
GRAPH_FIELDS = ("style_encoder", "content", "int8")


def code_input_name(key: str) -> str:
    """ONNX input/output name of a StyleCode key: ``din8.weight`` -> ``din8_weight``."""
    return key.replace(".", "_")


def _graph_problem(model_dir: Path, name: object) -> str | None:
    """Why ``name`` cannot be a graph file of ``model_dir``, or None (see ``graph_path``)."""
    if not isinstance(name, str) or not name or "\0" in name:
        return f"a graph file must be named by a file name, got {name!r}"
    rel = Path(name)
    if rel.is_absolute() or rel.drive or ".." in rel.parts:
        return f"graph file {name!r} lies outside the model directory"
    root = os.path.realpath(model_dir)
    if os.path.commonpath([root, os.path.realpath(model_dir / rel)]) != root:
        return f"graph file {name!r} links outside the model directory"
    return None


def graph_path(model_dir: str | Path, name: object) -> Path:
    """``model_dir / name`` for a graph file named by a manifest (or a caller), refused unless it stays inside
    ``model_dir``: a relative path without '..', whose resolved target (symlinks followed) is in the directory.
    The one place a graph's file name becomes a path, so an untrusted manifest cannot run a file elsewhere."""
    problem = _graph_problem(Path(model_dir), name)
    if problem:
        raise DinstyleError(f"{model_dir}: {problem}")
    return Path(model_dir) / name


def _is_int(v: object, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _check_code_layout(manifest: dict) -> str | None:
    """What is wrong with ``code_keys`` / ``code_inputs``, or None."""
    keys, inputs = manifest["code_keys"], manifest["code_inputs"]
    if not (isinstance(keys, list) and 0 < len(keys) <= MAX_CODE_KEYS and all(isinstance(k, str) for k in keys)
            and len(set(keys)) == len(keys)):
        return "code_keys must be a list of distinct names"
    if not (isinstance(inputs, dict) and set(inputs) == set(keys)):
        return "code_inputs must describe exactly the code_keys"
    for k, v in inputs.items():
        shape = v.get("shape") if isinstance(v, dict) else None
        if not (isinstance(v, dict) and isinstance(v.get("name"), str) and v["name"]
                and isinstance(shape, list) and 0 < len(shape) <= 8
                and all(_is_int(s, 1, MAX_CODE_DIM) for s in shape)):
            return f"code_inputs[{k!r}] must hold a name and a shape of positive sizes"
    return None


def check_manifest(model_dir: str | Path, manifest: dict) -> str | None:
    """What is wrong with a version-1 manifest's fields (types, ranges, graph paths), or None."""
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        return f"manifest lacks {', '.join(missing)}"
    for key in ("arch", "model_id"):
        if not isinstance(manifest[key], str):
            return f"{key} must be a string"
    if not isinstance(manifest.get("weights", ""), str):
        return "weights must be a string"
    for key, (low, high) in INT_RANGES.items():
        if key in manifest and not _is_int(manifest[key], low, high):
            return f"{key} must be a whole number from {low} to {high}, got {manifest[key]!r}"
    problem = _check_code_layout(manifest)
    if problem:
        return problem
    for key in GRAPH_FIELDS:
        entry = manifest.get(key)
        if entry is None and key == "int8":
            continue
        if not isinstance(entry, dict):
            return f"{key} must be an object naming its graph file"
        problem = _graph_problem(Path(model_dir), entry.get("file"))
        if problem:
            return f"{key}: {problem}"
    return None


def _load(path: Path) -> object:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise DinstyleError(f"{path}: unreadable manifest ({e.strerror or e})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise DinstyleError(f"{path}: larger than {MAX_MANIFEST_BYTES // 1024} KB: not a dinstyle ONNX manifest")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        reason = str(e).splitlines()[0] if isinstance(e, ValueError) and str(e) else "nested too deeply"
        raise DinstyleError(f"{path}: unreadable manifest ({reason})") from None


def read_manifest(model_dir: str | Path) -> dict:
    """Load and check ``model_dir/manifest.json`` (one-line errors for a missing, foreign or malformed one)."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST_FILE
    if not model_dir.is_dir():
        raise DinstyleError(f"{model_dir}: no such model directory (make one with 'dinstyle export onnx')")
    if not path.is_file():
        raise DinstyleError(f"{model_dir}: no {MANIFEST_FILE} (not a directory made by 'dinstyle export onnx')")
    manifest = _load(path)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DinstyleError(f"{path}: not a dinstyle ONNX manifest")
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise DinstyleError(f"{path}: manifest version {manifest.get('format_version')!r} is not supported "
                            f"(this runtime reads version {MANIFEST_VERSION}); re-export the model")
    problem = check_manifest(model_dir, manifest)
    if problem:
        raise DinstyleError(f"{path}: {problem}")
    return manifest


def write_manifest(model_dir: str | Path, manifest: dict) -> None:
    """Replace ``model_dir/manifest.json`` atomically."""
    tmp = Path(model_dir) / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(Path(model_dir) / MANIFEST_FILE)
