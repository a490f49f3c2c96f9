"""The periodic-artefact measure (eval/periodic.py) on generated textures: brushwork low, grids and streaks
high, more grid scores higher, and only flat windows are read."""
import math

import pytest
import torch

from dinstyle.eval.periodic import periodic_artefacts
from dinstyle.eval.stroke import gaussian_blur

H = W = 256


def _rgb(y: torch.Tensor) -> torch.Tensor:
    return y.clamp(0, 1).expand(1, 3, H, W)


@pytest.fixture(scope="module")
def textures():
    g = torch.Generator().manual_seed(0)
    brush = gaussian_blur(torch.rand(1, 1, H, W, generator=g).double(), 1.5).float()
    brush = 0.5 + 0.05 * (brush - brush.mean()) / brush.std()
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    grid = 0.5 + 0.05 * (torch.cos(2 * math.pi * xx / 8) + torch.cos(2 * math.pi * yy / 8)).float()[None, None]
    streaks = 0.5 + 0.05 * torch.randn(1, 1, 1, W, generator=g).expand(1, 1, H, W)
    return {"brush": brush, "grid": grid, "streaks": streaks}


def test_brushwork_is_not_periodic_grids_and_streaks_are(textures):
    flat = torch.ones(1, 1, H, W, dtype=torch.bool)
    score = {k: periodic_artefacts(_rgb(v), flat)[0] for k, v in textures.items()}
    assert score["brush"].periodic < 0.05 and score["brush"].windows == 49
    assert score["grid"].periodic > 0.9 and score["streaks"].periodic > 0.9


def test_more_grid_scores_higher(textures):
    flat = torch.ones(1, 1, H, W, dtype=torch.bool)
    mix = [periodic_artefacts(_rgb((1 - a) * textures["brush"] + a * textures["grid"]), flat)[0].periodic
           for a in (0.0, 0.3, 0.6)]
    assert mix[0] < mix[1] < mix[2]


def test_only_flat_windows_count(textures):
    """A grid outside the flat mask is not seen; no flat window at all gives NaN."""
    y = textures["brush"].clone()
    y[..., :, W // 2:] = textures["grid"][..., :, W // 2:]
    left = torch.zeros(1, 1, H, W, dtype=torch.bool)
    left[..., :, : W // 2] = True
    assert periodic_artefacts(_rgb(y), left)[0].periodic < 0.05
    assert periodic_artefacts(_rgb(y), ~left)[0].periodic > 0.9
    none = periodic_artefacts(_rgb(y), torch.zeros(1, 1, H, W, dtype=torch.bool))[0]
    assert math.isnan(none.periodic) and none.windows == 0
    with pytest.raises(ValueError, match="differ in size"):
        periodic_artefacts(_rgb(y), left[..., :128, :])
