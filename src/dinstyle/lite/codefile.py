"""Read style codes saved by ``StyleCode.save`` (safetensors) with numpy alone.

safetensors is a simple, data-only format: an 8-byte little-endian header length, a JSON header
({name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}), then raw little-endian tensor bytes.
Reading it here keeps the runtime's dependencies to onnxruntime, numpy and Pillow. Every offset and
size is checked against the file, so a corrupt or hostile file raises a one-line error.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DinstyleError

STYLE_CODE_FORMAT = "dinstyle-style-code"  # the same tag as dinstyle.stylecode (which needs torch)
MAX_HEADER = 100 * 1024 * 1024
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U8": "u1", "BOOL": "?"}


def _decode(raw: bytes | memoryview, dtype: str, shape: list[int]) -> np.ndarray:
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape).copy()


def read_safetensors(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata strings) from a safetensors file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DinstyleError(f"{path}: no such file") from None
    except OSError as e:
        raise DinstyleError(f"{path}: cannot read ({e.strerror or e})") from None
    bad = DinstyleError(f"{path}: not a safetensors file")
    if len(data) < 8:
        raise bad
    n = int.from_bytes(data[:8], "little")
    if n > min(MAX_HEADER, len(data) - 8):
        raise bad
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        raise bad from None
    if not isinstance(header, dict):
        raise bad
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        try:
            dtype, shape, (start, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
            size = int(np.prod(shape)) * (2 if dtype == "BF16" else np.dtype(DTYPES[dtype]).itemsize)
        except (KeyError, TypeError, ValueError):
            raise DinstyleError(f"{path}: tensor {name!r} has an unsupported or malformed header entry") from None
        if not (0 <= start <= end <= len(body)) or end - start != size or min(shape, default=0) < 0:
            raise DinstyleError(f"{path}: tensor {name!r} lies outside the file or has the wrong size")
        tensors[name] = _decode(body[start:end], dtype, shape)
    return tensors, {str(k): str(v) for k, v in meta.items()}


def read_style_code(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """A style code file's float32 tensors and metadata (JSON values decoded)."""
    tensors, raw = read_safetensors(path)
    if raw.get("format") != STYLE_CODE_FORMAT:
        raise DinstyleError(f"{path}: not a dinstyle style code (made by 'dinstyle encode-style')")
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    return {k: v.astype(np.float32) for k, v in tensors.items()}, meta
