"""alpha's restore: y(alpha) + (1 - alpha) * (photo - y(0)) on every path (whole, tiles, video, CLI)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.runtime.request import RunRequest, StyleOptions
from dinstyle.models import create_model, save_model
from dinstyle.models.stylecode import StyleCode
from dinstyle.runtime.runner import run_model
from dinstyle.runtime.tiling import stylize_tiled
from dinstyle.video.pipeline import FrameStylizer
from conftest import TINY, TINY_FAST


@pytest.fixture(scope="module")
def model_and_code():
    torch.manual_seed(0)
    model = create_model("din-mobilenet-vgg", **TINY).eval()
    with torch.inference_mode():
        code = model.encode_style(torch.rand(1, 3, 64, 64))
        for v in code.tensors.values():  # an untrained DIN is nearly plain instance norm: push it somewhere
            v += 0.3 * torch.randn_like(v)
    return model, code


def _x(h=70, w=90, seed=1):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@torch.inference_mode()
def test_restore_adds_back_what_the_model_loses_at_alpha_zero(model_and_code):
    model, code = model_and_code
    x = _x()
    y = lambda a, **k: run_model(model, x, RunRequest([code], alpha=a, **k))  # noqa: E731
    raw0 = y(0.0, restore=False)
    assert (raw0 - x).abs().mean() > 0.05  # the model alone does not give the photo back
    want = y(0.3, restore=False).clamp(0, 1) + 0.7 * (x - raw0.clamp(0, 1))  # on the images as shown
    assert torch.allclose(y(0.3), want, atol=1e-6)
    assert torch.equal(y(0.0), x)  # the photo itself, with no network pass
    assert torch.equal(y(1.0), y(1.0, restore=False))  # full strength: untouched
    mids = [(y(a) - x).abs().mean() for a in (0.25, 0.5, 0.75, 1.0)]
    assert all(a < b for a, b in zip(mids, mids[1:]))  # the slider moves away from the photo steadily


@torch.inference_mode()
def test_restore_in_tiles_matches_the_whole_image_and_counts_both_passes(model_and_code):
    model, code = model_and_code
    x = _x(110, 150)
    calls = []
    tiled = run_model(model, x, RunRequest([code], alpha=0.4, tile=48, progress=lambda d, n: calls.append((d, n))))
    assert (tiled - run_model(model, x, RunRequest([code], alpha=0.4))).abs().max() < 1e-4
    done, total = zip(*calls)
    assert list(done) == sorted(done) and set(total) == {total[-1]} and done[-1] == total[-1]
    single = []
    run_model(model, x, RunRequest([code], alpha=0.4, tile=48, restore=False, progress=lambda d, n: single.append(n)))
    assert total[-1] == 2 * single[-1]


@torch.inference_mode()
def test_video_restore_pass_keeps_its_own_smoothed_statistics(model_and_code):
    model, code = model_and_code
    frames = [(_x(48, 64, seed=s) * 255).to(torch.uint8) for s in range(3)]
    runs = {r: FrameStylizer(model, code, StyleOptions(alpha=0.5, restore=r), temporal=0.8) for r in (True, False)}
    for f in frames:
        for run in runs.values():
            run(f)
    with_restore, without = (runs[r].smoother.stats for r in (True, False))
    assert {k for k in with_restore if not k.startswith("alpha0/")} == set(without)
    assert any(k.startswith("alpha0/") for k in with_restore)
    for level, (m, s) in without.items():  # the alpha-0 pass did not overwrite the main pass's state
        assert torch.equal(with_restore[level][0], m) and torch.equal(with_restore[level][1], s), level
    frame0 = frames[0].float() / 255
    assert torch.allclose(FrameStylizer(model, code, StyleOptions(alpha=0.0))(frames[0]), frame0, atol=1e-6)


def test_cli_alpha_zero_is_the_photo_unless_no_restore(tmp_path, model_and_code):
    from dinstyle.cli import main

    model, _ = model_and_code
    save_model(model, tmp_path / "m.safetensors")
    photo = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(photo[::-1, ::-1].copy()).save(tmp_path / "style.png")
    for name, extra in {"restore": [], "raw": ["--no-restore"]}.items():
        assert main(["stylize", str(tmp_path / "photo.png"), "--style", str(tmp_path / "style.png"), "--style-size",
                     "64", "--model", str(tmp_path / "m.safetensors"), "--alpha", "0", *extra, "-o",
                     str(tmp_path / f"{name}.png"), "--quiet"]) == 0
    out = {n: np.asarray(Image.open(tmp_path / f"{n}.png")).astype(int) for n in ("restore", "raw")}
    assert np.array_equal(out["restore"], photo)
    assert np.abs(out["raw"] - photo).mean() > 5


@torch.no_grad()  # the tiler measures the receptive field with autograd: no inference tensors
def test_alpha_blends_towards_the_contents_own_code():
    """Alpha's one meaning, on every model: it moves the code towards the code of the content image itself,
    read from the whole image, and the network runs at full strength."""
    torch.manual_seed(0)
    model = create_model("din-fast", **TINY_FAST).eval()
    x, style = _x(80, 96), torch.rand(1, 3, 64, 64)
    code, own = model.encode_style(style), model.content_code(x)
    for v in code.tensors.values():  # untrained codes all sit near identity: push the style's somewhere
        v += 0.3 * torch.randn_like(v)
    assert torch.allclose(model.stylize(x, code, alpha=0.0), model.stylize(x, own), atol=1e-6)
    mid = {k: own[k] + 0.3 * (v - own[k]) for k, v in code.tensors.items()}
    assert torch.allclose(model.stylize(x, code, alpha=0.3), model.stylize(x, StyleCode(mid)), atol=1e-6)
    assert not torch.allclose(model.stylize(x, code, alpha=0.3), model.stylize(x, code), atol=1e-3)
    tiled = run_model(model, x, RunRequest([code], alpha=0.3, tile=32, restore=False, dither=0))
    assert (tiled - model.stylize(x, code, alpha=0.3)).abs().max() < 1e-4  # one code for every tile
    reads = []
    read = model.content_code
    model.content_code = lambda c: reads.append(c.shape) or read(c)
    try:  # both passes of the restore (alpha 0.3 and 0), in tiles, blend towards one code read once
        run_model(model, x, RunRequest([code], alpha=0.3, tile=32, dither=0))
    finally:
        del model.content_code
    assert reads == [x.shape]
    tiled = stylize_tiled(model, x, RunRequest([code], alpha=0.3, tile=32, restore=False))
    assert (tiled - model.stylize(x, code, alpha=0.3)).abs().max() < 1e-4  # the tiler alone reads it once too
