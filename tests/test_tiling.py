"""Tiling: whole-image statistics + halos covering the receptive field make tiled == untiled."""
from __future__ import annotations

import pytest
import torch

from dinstyle.runtime.engine import engine_input  # the layout the runner and the tiles run in
from dinstyle.runtime.request import RunRequest
from dinstyle.models import create_model
from dinstyle.runtime.tiling import _window, plan_tiles, receptive_radius, stylize_tiled, tile_for_budget
from conftest import TINY, TINY_FAST




@pytest.fixture(scope="module", params=["din-mobilenet-vgg", "din-fast"])
def model_and_codes(request):
    torch.manual_seed(0)
    model = create_model(request.param, **(TINY if request.param == "din-mobilenet-vgg" else TINY_FAST)).eval()
    with torch.inference_mode():
        codes = [model.encode_style(torch.rand(1, 3, 64, 64)) for _ in range(2)]
        for c in codes:  # an untrained DIN is nearly plain instance norm: push it somewhere non-trivial
            for v in c.tensors.values():
                v += 0.3 * torch.randn_like(v)
    return model, codes


def test_cores_partition_the_image():
    boxes = plan_tiles(50, 70, 16, 8)
    cover = torch.zeros(50, 70)
    for (y0, y1, x0, x1), (by0, by1, bx0, bx1) in boxes:
        cover[y0:y1, x0:x1] += 1
        assert by0 == max(0, y0 - 8) and by1 == min(50, y1 + 8) and bx0 == max(0, x0 - 8) and bx1 == min(70, x1 + 8)
    assert torch.equal(cover, torch.ones(50, 70))


def test_balanced_cores_on_the_grid_and_budget(model_and_codes):
    boxes = plan_tiles(200, 72, 64, 8, multiple=8)
    assert [c[:2] for c, _ in boxes[::2]] == [(0, 56), (56, 112), (112, 168), (168, 200)]  # 4 rows of ~50, not 64+64+64+8
    model, codes = model_and_codes
    tile = tile_for_budget(model, codes[0], 700 * 700)
    halo = receptive_radius(model, codes[0]) + 16
    assert tile % 8 == 0 and (tile + 2 * halo) ** 2 <= 700 * 700 < (tile + 8 + 2 * halo + 16) ** 2


def test_blend_window_is_one_on_the_core_and_fades_in_the_halo():
    w = _window((16, 32, 16, 32), (8, 40, 8, 40), blend=4)[0, 0]
    assert torch.all(w[8:24, 8:24] == 1)
    assert w[7, 12] == pytest.approx(0.8) and w[3, 12] == 0 and w[0, 0] == 0


def test_receptive_radius_is_measured_and_cached(model_and_codes, monkeypatch):
    model, codes = model_and_codes
    r = receptive_radius(model, codes[0])
    assert 16 <= r < 200

    def no_second_measurement(*a, **k):
        raise AssertionError("the receptive field was measured again")

    monkeypatch.setattr(model, "stylize", no_second_measurement)
    assert receptive_radius(model, codes[0]) == r


@pytest.mark.parametrize("tile", [32, 48, 72])
def test_tiled_matches_untiled(model_and_codes, tile):
    model, codes = model_and_codes
    x = torch.rand(2, 3, 110, 150, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = model.stylize(engine_input(x), codes[0], alpha=0.8)
        out = stylize_tiled(model, x, RunRequest(codes[0], alpha=0.8, tile=tile))
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-4, (out - ref).abs().max()


def test_tiled_matches_untiled_with_masks_and_stroke_map(model_and_codes):
    model, codes = model_and_codes
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 96, 120, generator=g)
    m = (torch.arange(120) > 50).float().expand(1, 1, 96, 120)
    stroke = torch.rand(1, 1, 96, 120, generator=g) + 0.5
    with torch.inference_mode():
        ref = model.stylize(engine_input(x), codes, masks=[m, 1 - m], stroke=stroke)
        out = stylize_tiled(model, x, RunRequest(codes, masks=[m, 1 - m], stroke=stroke, tile=40))
    assert (out - ref).abs().max() < 1e-4


def test_statistics_and_halo_both_matter(model_and_codes):
    """The test above could fail: per-tile statistics or a short halo give visibly different images."""
    model, codes = model_and_codes
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(3))
    x[..., :48, :] *= 0.3  # tiles with different content statistics
    with torch.inference_mode():
        ref = model.stylize(x, codes[0])
        short_halo = stylize_tiled(model, x, RunRequest(codes[0], tile=32), halo=8, blend=4)
        per_tile = torch.zeros_like(ref)
        for (y0, y1, x0, x1), _ in plan_tiles(96, 128, 32, 0):
            per_tile[..., y0:y1, x0:x1] = model.stylize(x[..., y0:y1, x0:x1], codes[0])
    assert (short_halo - ref).abs().max() > 1e-2
    assert (per_tile - ref).abs().mean() > 10 * (stylize_tiled(model, x, RunRequest(codes[0], tile=32)) - ref).abs().mean()


def test_deformable_model_tiles_too():
    torch.manual_seed(0)
    model = create_model("din-mobilenet-vgg", deformable=True, **TINY).eval()
    with torch.inference_mode():
        code = model.encode_style(torch.rand(1, 3, 64, 64))
        x = torch.rand(1, 3, 80, 104)
        ref = model.stylize(engine_input(x), code, stroke=2.0)
        out = stylize_tiled(model, x, RunRequest(code, stroke=2.0, tile=40))
    assert (out - ref).abs().max() < 1e-4
