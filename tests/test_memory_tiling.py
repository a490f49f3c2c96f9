"""Tiling when the memory requires it: the budget comes from the available memory and the model's measured bytes
per pixel; tiled output still equals untiled; an explicit max_pixels_untiled still wins."""
from __future__ import annotations

import pytest
import torch

from dinstyle.errors import UsageError
from dinstyle.models import create_model
from dinstyle.runtime import memory, runner
from dinstyle.runtime.request import RunRequest, StyleOptions
from conftest import TINY, TINY_FAST

H, W = 110, 150  # as tests/test_tiling.py


@pytest.fixture(scope="module", params=["din-mobilenet-vgg", "din-fast"])
def model_and_code(request):
    torch.manual_seed(0)
    model = create_model(request.param, **(TINY if request.param == "din-mobilenet-vgg" else TINY_FAST)).eval()
    with torch.inference_mode():
        code = model.encode_style(torch.rand(1, 3, 64, 64))
        for v in code.tensors.values():  # an untrained DIN is nearly plain instance norm: push it off identity
            v += 0.3 * torch.randn_like(v)
    return model, code


@pytest.fixture
def tiles_run(monkeypatch):
    """The tile sizes stylize_tiled was called with (the runner's tiled path), in order."""
    calls = []
    real = runner.stylize_tiled

    def spy(model, x, request, *a, **k):
        calls.append(request.tile)
        return real(model, x, request, *a, **k)

    monkeypatch.setattr(runner, "stylize_tiled", spy)
    return calls


def memory_for(model, code, pixels: int) -> int:
    """Available bytes for which one pass may take ``pixels`` pixels (the rule at the CPU's fraction)."""
    per_px = memory.bytes_per_pixel(model, code) + memory.HELD_BYTES_PER_PIXEL
    return int(pixels * per_px / memory.fraction_for("cpu")) + 1


def test_footprint_is_measured_positive_cached_and_per_pixel(model_and_code, monkeypatch):
    model, code = model_and_code
    per_px, measured = memory.footprint_of(model, code)
    assert measured and per_px > 12  # more than the float32 RGB input alone
    small, large = (memory._measure_peak(model, code, s) / s**2 for s in (96, 192))
    assert 1 / 1.5 < small / large < 1.5, (small, large)  # bytes per pixel, not per image

    def no_second_measurement(*a, **k):
        raise AssertionError("the footprint was measured again")

    monkeypatch.setattr(memory, "_measure_peak", no_second_measurement)
    assert memory.bytes_per_pixel(model, code) == per_px


def test_budget_follows_the_available_memory(model_and_code, monkeypatch):
    model, code = model_and_code
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 2**30)
    big = memory.untiled_pixel_budget(model, code=code)
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 2**20)
    small = memory.untiled_pixel_budget(model, code=code)
    assert small < big and big == pytest.approx(1024 * small, rel=1e-3)
    assert memory.untiled_pixel_budget(model, code=code, fraction=0.25) == pytest.approx(small / 2, rel=1e-3)
    # a tile shares the memory with the tiled image itself
    assert memory.tile_pixel_budget(model, 10_000, code=code) < small
    assert memory.available_bytes("cpu") > 0


def test_little_memory_tiles_and_the_output_equals_untiled(model_and_code, monkeypatch, tiles_run):
    model, code = model_and_code
    x = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    request = RunRequest(code, alpha=0.8)  # the restore too: two passes, both decided by the memory
    assert request.max_pixels_untiled is None
    with torch.inference_mode():
        ref = runner.run_model(model, x, request)
        assert tiles_run == []  # this machine's memory takes 110 x 150 in one piece
        monkeypatch.setattr(memory, "available_bytes", lambda device=None: memory_for(model, code, H * W // 3))
        out = runner.run_model(model, x, request)
    assert len(tiles_run) == 2 and all(t is not None for t in tiles_run)
    assert (out - ref).abs().max() < 1e-4, (out - ref).abs().max()


def test_the_batch_counts_against_the_memory(model_and_code, monkeypatch, tiles_run):
    model, code = model_and_code
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: memory_for(model, code, 3 * H * W // 2))
    x = torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        one = runner.run_model(model, x[:1], RunRequest(code))
        assert tiles_run == []
        both = runner.run_model(model, x, RunRequest(code))
    assert len(tiles_run) == 1
    assert (both[:1] - one).abs().max() < 1e-4


def test_an_explicit_max_pixels_untiled_wins(model_and_code, monkeypatch, tiles_run):
    model, code = model_and_code
    x = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1)  # the memory rule would tile
        runner.run_model(model, x, RunRequest(code, max_pixels_untiled=H * W))
        assert tiles_run == []
        monkeypatch.setattr(memory, "available_bytes", lambda device=None: 2**40)
        runner.run_model(model, x, RunRequest(code, max_pixels_untiled=5000))  # plenty of memory: still tiled
    assert len(tiles_run) == 1


def test_options_default_to_the_memory_rule():
    assert StyleOptions().max_pixels_untiled is None and RunRequest([_code()]).max_pixels_untiled is None
    assert StyleOptions(max_pixels_untiled=100).max_pixels_untiled == 100
    for bad in (0, -5, 2.5, True):
        with pytest.raises(UsageError, match="max_pixels_untiled"):
            StyleOptions(max_pixels_untiled=bad)


def _code():
    from dinstyle.models.stylecode import StyleCode

    return StyleCode({"a.weight": torch.zeros(1, 2), "a.bias": torch.zeros(1, 2)})
