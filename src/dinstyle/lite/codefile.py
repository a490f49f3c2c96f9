"""Read style codes saved by ``StyleCode.save`` (safetensors) with numpy alone.

safetensors is a simple, data-only format: an 8-byte little-endian header length, a JSON header
({name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}), then raw little-endian tensor bytes.
Reading it here keeps the runtime's dependencies to onnxruntime, numpy and Pillow. Every offset and
size is checked against the file, so a corrupt or hostile file raises a one-line error.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DinstyleError
from ..io.formats import FLOAT16_MAX, STYLE_CODE_FORMAT  # the tags the torch side writes
from ..io.metadata import decode_metadata, loads_json  # the torch side's codec too, bounded

MAX_HEADER = 100 * 1024 * 1024
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U8": "u1", "BOOL": "?"}


def _decode(raw: bytes | memoryview, dtype: str, shape: list[int]) -> np.ndarray:
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape).copy()


def _entry(path: Path, name: str, info, body_size: int) -> tuple[str, list[int], int, int]:
    """(dtype, shape, start, end) of one header entry, every field checked (ints are Python ints: no overflow)."""
    bad = DinstyleError(f"{path}: tensor {name!r} has an unsupported or malformed header entry")
    if not isinstance(info, dict):
        raise bad
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
    if not (isinstance(dtype, str) and (dtype in DTYPES or dtype == "BF16")):
        raise bad
    if not (isinstance(shape, list) and all(is_int(s) for s in shape)):
        raise bad
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_int(o) for o in offsets)):
        raise bad
    start, end = offsets
    size = math.prod(shape) * (2 if dtype == "BF16" else np.dtype(DTYPES[dtype]).itemsize)
    if not start <= end <= body_size or end - start != size:
        raise DinstyleError(f"{path}: tensor {name!r} lies outside the file or has the wrong size")
    return dtype, shape, start, end


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
        header = loads_json(data[8:8 + n], str(path))
    except ValueError:
        raise bad from None
    if not isinstance(header, dict):
        raise bad
    meta = header.pop("__metadata__", None)
    meta = {} if meta is None else meta
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise DinstyleError(f"{path}: its __metadata__ must map strings to strings")
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        dtype, shape, start, end = _entry(path, name, info, len(body))
        tensors[name] = _decode(body[start:end], dtype, shape)
    return tensors, meta


def read_style_code(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """A style code file's float32 tensors and metadata (JSON values decoded); NaN or inf is refused."""
    tensors, raw = read_safetensors(path)
    if raw.get("format") != STYLE_CODE_FORMAT:
        raise DinstyleError(f"{path}: not a dinstyle style code (made by 'dinstyle encode-style')")
    meta = decode_metadata(raw, str(path))
    check_finite(tensors, str(path))  # before the cast: a float64 1e300 must not become a silent inf
    return {k: v.astype(np.float32) for k, v in tensors.items()}, meta


def check_finite(code: dict[str, np.ndarray], label: str) -> dict[str, np.ndarray]:
    """The lite runtime's one check that a style code holds only finite numbers within float16's range
    (dinstyle's rule for codes: NaN, inf or 1e30 only ever paint a black picture)."""
    for k, v in code.items():
        if v.size and not (np.isfinite(v).all() and np.abs(v).max() <= FLOAT16_MAX):
            raise DinstyleError(f"{label}: style code holds NaN, inf or values beyond float16 in {k}")
    return code
