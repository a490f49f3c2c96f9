"""The stroke scale (runtime/scale.py): the network runs on the photo resized by stroke size x (size / reference),
brought back with the photo's own luminance detail; with tiles, masks, the restore, video, a stroke map, the
automatic map, lite; and the request's cancel hook."""
import numpy as np
import pytest
import torch

from dinstyle.defaults import scale_for, scaled_size
from dinstyle.errors import Cancelled
from dinstyle.models import create_model
from dinstyle.models.pretrained import PretrainedInfo
from dinstyle.runtime.controls import auto_stroke_map
from dinstyle.runtime.request import RunRequest, StyleOptions
from dinstyle.runtime.runner import run_model
from dinstyle.runtime.scale import luminance, run_scaled
from dinstyle.video.pipeline import FrameStylizer


@pytest.fixture(scope="module")
def model_and_code():
    torch.manual_seed(0)
    model = create_model("din-mobilenet", res_blocks=1).eval()
    with torch.no_grad():
        for p in model.style_encoder.weight_nets.parameters():
            p.normal_(0, 0.05)  # a random code, far from identity
        code = model.encode_style(torch.rand(1, 3, 64, 64))
    return model, code


def _x(h=96, w=128, seed=1):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_scale_rule():
    assert scale_for(300, 400) == 1.0 and scale_for(1024, 768) == 2.0 and scale_for(2048, 100, 1.5) == 6.0
    assert scale_for(300, 400, 2.0) == 2.0 and scaled_size(1024, 768, 2.0) == (512, 384)


def test_an_identity_network_gives_the_photos_luminance_back_exactly():
    """What the resize loses of the luminance comes back: only the chroma is as sharp as the small run."""
    x = _x(120, 160)
    seen = []
    y = run_scaled(lambda xs, ms: seen.append(xs.shape[-2:]) or xs, x, 2.0)
    assert seen == [(60, 80)] and y.shape == x.shape
    assert torch.allclose(luminance(y), luminance(x), atol=1e-5)
    assert (y - x).abs().max() > 1e-2  # the chroma is not (the check above could fail)



def test_larger_strokes_add_back_only_the_detail_of_stroke_size_1():
    """At scale 4 with ``detail_scale`` 2, the detail added back is what a 2x resize removes, not a 4x one; with
    ``detail_scale`` <= 1 none is: a bigger stroke size coarsens the picture (runtime/scale.py)."""
    x = _x(120, 160)
    identity = lambda xs, ms: xs  # noqa: E731
    plain = run_scaled(identity, x, 4.0, detail_scale=1.0)
    fine = run_scaled(identity, x, 4.0, detail_scale=2.0)
    full = run_scaled(identity, x, 4.0)
    assert torch.allclose(luminance(full), luminance(x), atol=1e-5)
    # fine - plain is exactly what a 2x resize removes: neither nothing nor all of the 4x detail
    expected = luminance(x) - luminance(run_scaled(identity, x, 2.0, detail_scale=1.0))
    assert torch.allclose(luminance(fine) - luminance(plain), expected, atol=1e-5)
    assert float(expected.abs().mean()) > 1e-3 and not torch.allclose(luminance(fine), luminance(full), atol=1e-3)


def test_the_native_pass_gives_its_fine_band_back():
    """With a native pass, what the resize removes comes back from it (all channels): an identity network
    gives the photo back exactly, and ``run`` still sees only the small image."""
    x = _x(120, 160)
    seen, calls = [], []
    y = run_scaled(lambda xs, ms: seen.append(xs.shape[-2:]) or xs, x, 2.0, native=lambda: calls.append(1) or x)
    assert seen == [(60, 80)] and calls == [1] and torch.allclose(y, x, atol=1e-5)
    assert run_scaled(lambda xs, ms: 1 / 0, x, 1.0, native=lambda: x) is x  # scale 1 is the native pass itself


@torch.no_grad()
def test_the_runner_runs_the_native_pass_once_per_alpha(model_and_code, monkeypatch):
    """A shrunk pass needs the photo-size pass for its fine band; a stroke map's two scales share it, and the
    restore's alpha-0 pass has its own (runtime/runner.py)."""
    import dinstyle.runtime.runner as runner

    model, code = model_and_code
    sizes = []
    real = runner._run
    monkeypatch.setattr(runner, "_run", lambda m, xs, r: sizes.append(tuple(xs.shape[-2:])) or real(m, xs, r))
    x = _x(96, 128)
    run_model(model, x, RunRequest([code], scale=2.0, detail_scale=2.0))
    assert sorted(sizes) == [(48, 64), (96, 128)]
    sizes.clear()
    v = torch.rand(1, 1, 96, 128)
    run_model(model, x, RunRequest([code], alpha=0.5, scale=4.0, detail_scale=2.0, scale_map=v))
    assert sorted(sizes) == [(12, 16)] * 2 + [(48, 64)] * 2 + [(96, 128)] * 2  # scales 2 and 8, twice
    sizes.clear()
    run_model(model, x, RunRequest([code], scale=2.0, detail_scale=1.0))  # no detail: no native pass
    assert sizes == [(48, 64)]


@torch.inference_mode(False)
@torch.no_grad()
def test_scaled_runs_tile_like_whole_ones_with_masks_and_restore(model_and_code):
    model, code = model_and_code
    x = _x(128, 160)
    m = (torch.arange(160) > 70).float().expand(1, 1, 128, 160)
    req = RunRequest([code, code], alpha=0.6, masks=[m, 1 - m], scale=2.0)
    whole = run_model(model, x, req)
    tiled = run_model(model, x, RunRequest([code, code], alpha=0.6, masks=[m, 1 - m], scale=2.0, tile=32))
    assert whole.shape == x.shape and (tiled - whole).abs().max() < 1e-4
    assert (whole - run_model(model, x, RunRequest([code, code], alpha=0.6, masks=[m, 1 - m]))).abs().mean() > 1e-3
    assert torch.equal(run_model(model, x, RunRequest([code], alpha=0.0, scale=2.0)), x)  # the restore still wins


@torch.no_grad()
def test_a_stroke_map_mixes_a_small_and_a_large_pass(model_and_code):
    model, code = model_and_code
    x = _x(128, 128)
    small, large = (run_model(model, x, RunRequest([code], scale=s)) for s in (0.5, 2.0))
    v = torch.zeros(1, 1, 128, 128)
    v[..., 64:] = 1
    mixed = run_model(model, x, RunRequest([code], scale=1.0, scale_map=v))
    assert torch.allclose(mixed[..., :64], small[..., :64], atol=1e-5)
    assert torch.allclose(mixed[..., 64:], large[..., 64:], atol=1e-5)


def test_auto_map_gives_flat_regions_large_strokes():
    x = torch.full((1, 3, 128, 128), 0.5)
    x[..., :, :64] = torch.rand(1, 3, 128, 64, generator=torch.Generator().manual_seed(0))  # detail on the left
    v = auto_stroke_map(x)
    assert v.shape == (1, 1, 128, 128) and 0 <= float(v.min()) and float(v.max()) <= 1
    assert float(v[..., 16:-16, 8:40].mean()) < 0.2 and float(v[..., 16:-16, 96:120].mean()) > 0.8


@torch.no_grad()
def test_video_frames_run_at_the_scale_of_their_size(model_and_code, monkeypatch):
    model, code = model_and_code
    model.pretrained = PretrainedInfo(reference_size=64)
    try:
        run = FrameStylizer(model, code, StyleOptions(stroke_size=1.0), temporal=0.5)
        frame = (_x(96, 128) * 255).to(torch.uint8)
        seen = []
        real = model.stylize
        monkeypatch.setattr(model, "stylize", lambda c, *a, **k: seen.append(tuple(c.shape[-2:])) or real(c, *a, **k))
        a, b = run(frame), run(frame)
    finally:
        model.pretrained = PretrainedInfo()
    assert seen[0] == (48, 64) and a.shape == (1, 3, 96, 128)
    assert (a - b).abs().max() < 1e-4  # a still video stays still


@torch.no_grad()
def test_cancel_stops_whole_and_tiled_runs(model_and_code):
    model, code = model_and_code
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    for tile in (None, 32):
        calls.clear()
        with pytest.raises(Cancelled):
            run_model(model, _x(), RunRequest([code], cancel=cancel, tile=tile))
        assert len(calls) == 3


def test_options_are_checked_once_with_one_line_errors():
    from dinstyle.errors import UsageError

    for bad in (dict(alpha=1.5), dict(alpha=float("nan")), dict(stroke_size=0), dict(tile=8),
                dict(style_weights=[1, 2], mask="m.png"), dict(style_size=3)):
        with pytest.raises(UsageError):
            StyleOptions(**bad)
    with pytest.raises(UsageError, match="2 style weights for 1 styles"):
        StyleOptions(style_weights=[1, 2]).check_styles(1)


def test_lite_runs_the_same_scale(model_and_code, tmp_path):
    """dinstyle.lite resizes with PIL, the torch path with torch: both bicubic, within a few levels."""
    pytest.importorskip("onnxruntime")
    import warnings

    from dinstyle.export import export_onnx
    from dinstyle.lite import LiteModel

    model, code = model_and_code
    model.pretrained = PretrainedInfo(reference_size=64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(model, tmp_path / "onnx")
        lite = LiteModel(tmp_path / "onnx")
        x = _x(96, 128)
        with torch.no_grad():
            ref = run_model(model, x, RunRequest([code], alpha=0.5, scale=scale_for(96, 128, 1.5, 64),
                                                 detail_scale=scale_for(96, 128, 1.0, 64)))
        lite_code = {k: v.numpy() for k, v in code.tensors.items()}
        out = lite.stylize(x[0].permute(1, 2, 0).numpy(), lite_code, 0.5, stroke_size=1.5)
    finally:
        model.pretrained = PretrainedInfo()
    assert lite.manifest["reference_size"] == 64
    diff = np.abs(out - ref.clamp(0, 1)[0].permute(1, 2, 0).numpy())
    assert diff.mean() < 2 / 255 and diff.max() < 0.1


def test_the_api_asks_for_stroke_size_1s_detail(model_and_code):
    """``Stylizer.request``: the scale grows with the stroke size, the detail added back stays that of size 1."""
    from dinstyle import Stylizer

    model, code = model_and_code
    model.pretrained = PretrainedInfo(reference_size=64)
    try:
        st = Stylizer(model, device="cpu")
        req = st.request(_x(96, 128), [code], StyleOptions(stroke_size=2.0))
    finally:
        model.pretrained = PretrainedInfo()
    assert req.scale == 4.0 and req.detail_scale == 2.0
