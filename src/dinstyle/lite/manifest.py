"""The exported model directory's ``manifest.json``: written by ``dinstyle export onnx``, read by the runtime.

Kept free of torch so both sides share the names and the checks.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DinstyleError

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "dinstyle-onnx"
MANIFEST_VERSION = 1
REQUIRED_KEYS = ("arch", "model_id", "code_keys", "code_inputs", "style_encoder", "content", "style_size",
                 "pad_multiple", "min_size")


def code_input_name(key: str) -> str:
    """ONNX input/output name of a StyleCode key: ``din8.weight`` -> ``din8_weight``."""
    return key.replace(".", "_")


def read_manifest(model_dir: str | Path) -> dict:
    """Load and check ``model_dir/manifest.json`` (one-line errors for a missing or foreign directory)."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST_FILE
    if not model_dir.is_dir():
        raise DinstyleError(f"{model_dir}: no such model directory (make one with 'dinstyle export onnx')")
    if not path.is_file():
        raise DinstyleError(f"{model_dir}: no {MANIFEST_FILE} (not a directory made by 'dinstyle export onnx')")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DinstyleError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DinstyleError(f"{path}: not a dinstyle ONNX manifest")
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise DinstyleError(f"{path}: manifest version {manifest.get('format_version')!r} is not supported "
                            f"(this runtime reads version {MANIFEST_VERSION}); re-export the model")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise DinstyleError(f"{path}: manifest lacks {', '.join(missing)}")
    return manifest


def write_manifest(model_dir: str | Path, manifest: dict) -> None:
    """Replace ``model_dir/manifest.json`` atomically."""
    tmp = Path(model_dir) / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(Path(model_dir) / MANIFEST_FILE)
