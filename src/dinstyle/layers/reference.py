"""A switch between the fast forms of issue 24 (layers.fast_conv, DIN's fused 1x1 path) and the plain forms they
rewrite: the same function either way, to rounding.

The plain forms run inside ``reference_forms()`` (``dinstyle profile`` counts the model's own MACs with it; the
rewrites execute about 1.15x as many, faster), during ONNX export, whose exporter cannot shape a conv whose
kernel is computed in the graph (ONNX Runtime plans its own layouts), and under ``torch.compile``, whose
Inductor (torch 2.13) failed on the rewrites ("vr must not be None" in its symbolic shapes) and fuses on its own.
"""
from __future__ import annotations

import contextlib
import threading

import torch

_state = threading.local()


@contextlib.contextmanager
def reference_forms():
    before = getattr(_state, "on", False)
    _state.on = True
    try:
        yield
    finally:
        _state.on = before


def use_reference_forms() -> bool:
    return getattr(_state, "on", False) or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()
