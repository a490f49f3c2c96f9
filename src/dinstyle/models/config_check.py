"""The types and ranges of a model config's values, checked before anything is built from them.

A model file (or a training config's [model] table) may come from anyone: ``res_blocks = 1e7`` builds for
minutes, a width of 1e6 asks for terabytes, a string where a number belongs fails deep inside a layer. The
rule lives here, once; ``registry._config`` applies it to every model built, and
``registry.check_model_config`` to every model file read. Each value must have its dataclass field's type
(JSON lists for tuples, of the field's length) and, for integers, lie in ``INT_RANGES`` by field name.
Values inside the ranges can still combine into a model too big to build (1024 channels, a 15x15 kernel and
no groups): ``registry.load_model_file`` builds a file's model on the meta device first and compares its
shapes with the file's tensors before allocating anything.
"""
from __future__ import annotations

import dataclasses
import typing

# (low, high) of each integer field, by name: far above every trained or tested model (widths <= 128,
# 5 residual blocks, 3x3 DIN kernels, 512-px styles), far below a build that takes minutes or gigabytes.
INT_RANGES = {"widths": (1, 1024), "out_width": (1, 1024), "style_hidden": (1, 1024), "res_blocks": (1, 64),
              "din_kernel": (1, 15), "din_groups": (1, 1024), "din_group_size": (1, 1024), "expand": (1, 16),
              "style_size": (16, 4096), "seed": (0, 2 ** 63 - 1)}
ODD = {"din_kernel"}  # a 'same' convolution pads k // 2 each side: an even kernel changes the map's size
MAX_STR = 4096  # style_encoder may be vgg19:PATH


def config_problem(cls: type, values: dict) -> str | None:
    """What is wrong with ``values`` (known keys of the dataclass ``cls``) in a few words, or None."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in values:
            problem = _value_problem(f.name, hints[f.name], values[f.name])
            if problem:
                return problem
    return None


def _value_problem(name: str, kind, value) -> str | None:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if kind is bool:
        return None if isinstance(value, bool) else f"{name} must be true or false, got {shown}"
    if kind is str:
        ok = isinstance(value, str) and len(value) <= MAX_STR
        return None if ok else f"{name} must be a name of at most {MAX_STR} characters, got {shown}"
    if kind is int:
        return _int_problem(name, value, shown, "an integer")
    if typing.get_origin(kind) is tuple and set(typing.get_args(kind)) == {int}:
        n = len(typing.get_args(kind))
        if not isinstance(value, (list, tuple)) or len(value) != n:
            return f"{name} must be a list of {n} integers, got {shown}"
        return next((p for p in (_int_problem(name, v, shown, f"a list of {n} integers") for v in value) if p), None)
    return f"{name}: a {kind} field has no rule (add one to models/config_check.py)"


def _int_problem(name: str, value, shown: str, what: str) -> str | None:
    low, high = INT_RANGES.get(name, (1, 1024))
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} must be {what}, got {shown}"
    if not low <= value <= high:
        return f"{name} must be {what} between {low} and {high}, got {shown}"
    if name in ODD and value % 2 == 0:
        return f"{name} must be odd, got {shown}"
    return None
