"""safetensors metadata, torch-free: every value is stored as a string, non-strings as JSON.

The one codec for both sides: ``tensorfiles`` (torch) writes and reads model files and style codes with it,
and the ``lite`` runtime reads style codes (and their safetensors header) with it.

Files come from anyone, so decoding is bounded here, once (``loads_json``): Python's JSON parser recurses
once per nesting level, and "[[[[..." a few thousand deep is a RecursionError, not a one-line error. Nothing
dinstyle writes nests more than 4 deep or comes near 1 MiB per value.
"""
from __future__ import annotations

import json

from ..errors import DinstyleError

MAX_DEPTH = 32
MAX_VALUE_CHARS = 1 << 20


class MetadataError(DinstyleError):
    """A metadata value (or JSON header) too big or too deeply nested to be dinstyle's (one line)."""


def encode_metadata(metadata: dict) -> dict[str, str]:
    """Metadata as safetensors stores it: strings kept, anything else JSON-encoded."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def decode_metadata(raw: dict[str, str], label: str = "<metadata>") -> dict:
    """The stored strings back: JSON values decoded, a string that is not JSON kept as it is. A value over
    ``MAX_VALUE_CHARS`` or nested deeper than ``MAX_DEPTH`` is a ``MetadataError`` naming ``label``."""
    meta = {}
    for k, v in raw.items():
        if len(v) > MAX_VALUE_CHARS:
            raise MetadataError(f"{label}: metadata {k[:40]!r} is over {MAX_VALUE_CHARS // 1024} KB; "
                                "not a dinstyle file")
        try:
            meta[k] = loads_json(v, f"{label}: metadata {k[:40]!r}")
        except ValueError:
            meta[k] = v
    return meta


def loads_json(text: str | bytes, label: str, max_depth: int = MAX_DEPTH):
    """``json.loads`` that never raises RecursionError: nesting over ``max_depth`` is a ``MetadataError``
    naming ``label``. Malformed JSON still raises ValueError (callers decide what that means)."""
    try:
        value = json.loads(text)
        too_deep = _deeper_than(value, max_depth)
    except RecursionError:  # the C parser's own recursion guard, thousands deep
        value, too_deep = None, True
    if too_deep:
        raise MetadataError(f"{label}: JSON nested more than {max_depth} deep; not a dinstyle file")
    return value


def _deeper_than(value, limit: int) -> bool:
    """Whether lists/dicts nest more than ``limit`` deep (iterative: the check itself must not recurse)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, dict)):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False
