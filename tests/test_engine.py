"""The engine (runtime/engine.py): channels-last on the CPU with several threads, plain NCHW with one, the fast
forms of layers.fast_conv, malloc that keeps freed blocks; the runner's output stays within 2/255 of the plain
float reference (NCHW, one thread, the plain forms) either way, tiles included."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
import torch

from dinstyle.defaults import DITHER
from dinstyle.layers.reference import reference_forms
from dinstyle.models import load_model
from dinstyle.runtime.engine import describe, engine_input
from dinstyle.runtime.request import RunRequest
from dinstyle.runtime.runner import dithered, run_model


@contextlib.contextmanager
def threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture(scope="module", params=["din-mobilenet", "din-magenta"])
def model_and_code(request):
    model = load_model(request.param).eval()  # real weights: the engine must not move real outputs
    with torch.inference_mode():
        code = model.encode_style(torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(3)))
    return model, code


def test_layout_follows_the_thread_count():
    x = torch.rand(1, 3, 16, 16)
    with threads(2):
        assert engine_input(x).is_contiguous(memory_format=torch.channels_last)
        assert describe(torch.device("cpu")).startswith("PyTorch eager, channels-last;")
    with threads(1):
        assert engine_input(x) is x and describe(torch.device("cpu")).startswith("PyTorch eager;")
    assert engine_input(torch.rand(3, 16, 16)).dim() == 3  # not an image batch: left alone


@pytest.mark.parametrize("tile", [None, 64])
def test_channels_last_runs_match_the_plain_float_reference(model_and_code, tile):
    model, code = model_and_code
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 112), torch.linspace(0, 1, 144), indexing="ij")
    x = torch.stack([0.3 + 0.5 * yy, 0.5 + 0.3 * torch.sin(6 * xx), 0.8 - 0.4 * yy])[None]
    with torch.inference_mode():
        with reference_forms():
            ref = model.stylize(dithered(x, DITHER), code).clamp(0, 1)  # NCHW, one thread, the plain forms
        with threads(2):
            out = run_model(model, x, RunRequest([code], tile=tile)).clamp(0, 1)
    assert out.is_contiguous() and out.shape == ref.shape
    diff = (out - ref).abs() * 255
    assert float(diff.max()) < 2.0 and float(diff.mean()) < 0.05, (float(diff.max()), float(diff.mean()))
    assert float((out - x).abs().mean()) > 0.02  # stylized, not passed through


def _allocator_in_a_fresh_process(env: dict) -> str:
    code = "from dinstyle import Stylizer; from dinstyle.runtime.engine import tune_allocator; " \
           "Stylizer.from_pretrained('din-mobilenet', device='cpu'); print(tune_allocator())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_cpu_stylizer_keeps_freed_blocks_unless_told_not_to():
    assert _allocator_in_a_fresh_process({"DINSTYLE_MALLOC": ""}).startswith("malloc keeps freed blocks up to")
    assert _allocator_in_a_fresh_process({"DINSTYLE_MALLOC": "system"}) == "system malloc (DINSTYLE_MALLOC=system)"
