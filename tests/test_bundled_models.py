"""The two bundled models, with their real weights: the strength slider runs from the photo to the style
without leaving the way (din-fast's DIN-feature alpha once turned every 0 < alpha < 1 into saturated noise)."""
from __future__ import annotations

import pytest
import torch

from dinstyle import Stylizer


def _photo() -> torch.Tensor:
    """A smooth, photo-like 96x128 image: a sky gradient, a dark hill and a bright disc."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 128), indexing="ij")
    img = torch.stack([0.4 + 0.4 * yy, 0.55 + 0.3 * yy, 0.9 - 0.3 * yy])
    hill = (yy > 0.6 + 0.15 * torch.sin(6 * xx)).float()
    img = img * (1 - hill) + hill * torch.stack([0.2 + 0.1 * xx, 0.35 + 0 * xx, 0.15 + 0 * xx])
    disc = (((yy - 0.3) ** 2 + (xx - 0.7) ** 2) < 0.01).float()
    return (img * (1 - disc) + disc * 0.95)[None]


@pytest.mark.parametrize("name", ["din-magenta", "din-mobilenet", "din-fast"])
def test_bundled_models_alpha_stays_between_the_photo_and_the_style(name):
    st = Stylizer.from_pretrained(name, device="cpu")
    x = _photo()
    code = st.encode_style("builtin:irises")
    raw = {a: st.stylize(x, code, alpha=a, restore=False) for a in (0.0, 0.5, 1.0)}
    span = (raw[1.0] - raw[0.0]).abs().mean()
    assert span > 0.02  # the style really changes the picture
    # halfway is nearer each end than the ends are to each other (saturated noise is far from both)
    assert (raw[0.5] - raw[0.0]).abs().mean() < span and (raw[0.5] - raw[1.0]).abs().mean() < span
    assert torch.equal(st.stylize(x, code, alpha=0.0), x)  # with the restore (the default): the photo
    assert (st.stylize(x, code, alpha=0.5) - x).abs().mean() < (raw[1.0] - x).abs().mean()
