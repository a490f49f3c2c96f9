"""safetensors metadata, torch-free: every value is stored as a string, non-strings as JSON.

The one codec for both sides: ``tensorfiles`` (torch) writes and reads model files and style codes with it,
and the ``lite`` runtime reads style codes with it.
"""
from __future__ import annotations

import json


def encode_metadata(metadata: dict) -> dict[str, str]:
    """Metadata as safetensors stores it: strings kept, anything else JSON-encoded."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def decode_metadata(raw: dict[str, str]) -> dict:
    """The stored strings back: JSON values decoded, a string that is not JSON kept as it is."""
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    return meta
