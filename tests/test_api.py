"""The Python API: every control changes the output the way it says; inputs come back as the same kind."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle import Stylizer
from dinstyle.errors import DinstyleError, UsageError
from dinstyle.io.images import tensor_to_pil
from dinstyle.runtime.engine import engine_input  # the layout the runner runs in
from dinstyle.models.stylecode import StyleCode
from dinstyle.defaults import DITHER
from dinstyle.runtime.controls import preserve_color
from dinstyle.runtime.runner import dithered
from conftest import tiny_model_file

SS = 64  # style size used throughout: small is fast



@pytest.fixture(scope="module")
def st(tmp_path_factory):
    return Stylizer.from_pretrained(str(tiny_model_file(tmp_path_factory.mktemp("m") / "tiny.safetensors")), "cpu")


def img(h=48, w=64, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


# Two styles that differ in structure, not only in brightness: the style encoder sees features at unit
# RMS (models/style.py unit_rms), so a darker copy of the same noise would encode to nearly the same code.
A = img(40, 40, 10)
B = (torch.linspace(0, 1, 40)[None, :] * torch.linspace(1, 0, 40)[:, None]).expand(1, 3, 40, 40) * torch.tensor(
    [1.0, 0.4, 0.1]).view(1, 3, 1, 1)


def test_alpha_zero_is_the_contents_own_code_without_restore_and_the_photo_with_it(st):
    x = img()
    with torch.inference_mode():
        xd = dithered(x, DITHER)  # what every pass sees (runtime/runner.py)
        ref = st.model.stylize(engine_input(xd), st.model.content_code(xd)).clamp(0, 1)  # the photo restyled by itself
    out0 = st.stylize(x, A, alpha=0.0, style_size=SS, restore=False)
    assert torch.allclose(out0, ref, atol=1e-6)
    assert torch.allclose(st.stylize(x, B, alpha=0.0, style_size=SS, restore=False), out0)
    d = [(st.stylize(x, A, alpha=a, style_size=SS, restore=False) - ref).abs().mean() for a in (0.25, 0.5, 1.0)]
    assert 0 < d[0] < d[1] < d[2]
    assert torch.equal(st.stylize(x, A, alpha=0.0, style_size=SS), x)  # restore (the default): the photo


def test_style_weights_blend_in_parameter_space(st):
    x = img()
    a, b = st.stylize(x, A, style_size=SS), st.stylize(x, B, style_size=SS)
    assert torch.equal(st.stylize(x, [A, B], style_weights=[1, 0], style_size=SS), a)
    assert torch.equal(st.stylize(x, [A, B], style_weights=[0, 3], style_size=SS), b)
    mid = st.stylize(x, [A, B], style_weights=[1, 1], style_size=SS)
    assert (mid - a).abs().mean() > 1e-3 and (mid - b).abs().mean() > 1e-3
    with pytest.raises(UsageError):
        st.stylize(x, [A, B], style_weights=[1], style_size=SS)


def test_preserve_color_keeps_content_chroma(st):
    x = 0.25 + 0.5 * img()
    plain = st.stylize(x, A, style_size=SS)
    kept = st.stylize(x, A, style_size=SS, preserve_color=True)
    ycc = lambda t: torch.stack([0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2],  # noqa: E731
                                 -0.168736 * t[:, 0] - 0.331264 * t[:, 1] + 0.5 * t[:, 2],
                                 0.5 * t[:, 0] - 0.418688 * t[:, 1] - 0.081312 * t[:, 2]], 1)
    inside = (kept > 0.01).all(1) & (kept < 0.99).all(1)  # where clamping did not move the colour
    assert inside.float().mean() > 0.1
    assert (ycc(kept)[:, 1:] - ycc(x)[:, 1:]).abs().amax(1)[inside].max() < 1e-4
    assert (ycc(kept)[:, 0] - ycc(plain)[:, 0]).abs()[inside].max() < 1e-4
    assert (ycc(plain)[:, 1:] - ycc(x)[:, 1:]).abs().amax(1)[inside].mean() > 0.01  # without it, colours move
    assert torch.allclose(preserve_color(x, x), x, atol=1e-5)


def test_mask_picks_one_style_per_region(st):
    x = img(48, 256)
    mask = np.zeros((48, 256), np.uint8)
    mask[:, 128:] = 200  # darker value -> first style
    out = st.stylize(x, [A, B], mask=mask, style_size=SS)
    a, b = st.stylize(x, A, style_size=SS), st.stylize(x, B, style_size=SS)
    far = 128 - 80  # farther from the boundary than the receptive field (later levels still share statistics)
    dist = lambda u, v: (u - v).abs().mean().item()  # noqa: E731
    assert dist(out[..., :far], a[..., :far]) * 2 < dist(out[..., :far], b[..., :far])
    assert dist(out[..., -far:], b[..., -far:]) * 2 < dist(out[..., -far:], a[..., -far:])
    pal = Image.fromarray((mask > 0).astype(np.uint8), "P")  # indexed: palette index order
    assert torch.allclose(st.stylize(x, [A, B], mask=pal, style_size=SS), out, atol=1e-6)
    with pytest.raises(DinstyleError, match=r"2 distinct values \(0, 200\) but 3 styles"):
        st.stylize(x, [A, B, A], mask=mask, style_size=SS)
    with pytest.raises(DinstyleError, match="content is 256x48"):
        st.stylize(x, [A, B], mask=np.zeros((50, 50), np.uint8), style_size=SS)


def test_style_size_is_the_encoding_size(st):
    code = st.encode_style(A, style_size=32)
    with torch.inference_mode():
        ref = st.model.encode_style(torch.nn.functional.interpolate(A, size=(32, 32), mode="bilinear", antialias=True))
    assert all(torch.allclose(code[k], ref[k]) for k in ref.tensors)
    x = img()
    assert (st.stylize(x, A, style_size=32) - st.stylize(x, A, style_size=96)).abs().mean() > 1e-3


def test_stroke_size_runs_the_network_at_another_scale(st, monkeypatch):
    """Stroke size S runs the network on the photo shrunk by S x (size / reference) and brings it back to full
    size; the style is encoded as it is (no other style size), and a photo under the reference runs as it is."""
    x = img()  # 48x64: under the reference size
    seen = []
    real = st.model.stylize
    monkeypatch.setattr(st.model, "stylize", lambda c, *a, **k: seen.append(tuple(c.shape[-2:])) or real(c, *a, **k))
    same = st.stylize(x, A, style_size=SS)
    assert seen[-1] == (48, 64)
    big = st.stylize(x, A, style_size=SS, stroke_size=2.0)
    assert seen[-1] == (24, 32) and big.shape == x.shape  # under the reference: no native pass for detail
    assert (big - same).abs().mean() > 1e-3
    kept = st.model.pretrained
    st.model.pretrained = dataclasses.replace(kept, reference_size=32)  # the same photo, now twice the reference
    try:
        assert st.stylize(x, A, style_size=SS).shape == x.shape and seen[-2:] == [(24, 32), (48, 64)]  # + native
    finally:
        st.model.pretrained = kept


def test_stroke_map_black_small_white_large(st):
    x = img()
    black, white = np.zeros((48, 64), np.uint8), np.full((48, 64), 255, np.uint8)
    assert torch.allclose(st.stylize(x, A, style_size=SS, stroke_map=black),
                          st.stylize(x, A, style_size=SS, stroke_size=0.5), atol=1e-6)
    assert torch.allclose(st.stylize(x, A, style_size=SS, stroke_map=white),
                          st.stylize(x, A, style_size=SS, stroke_size=2.0), atol=1e-6)


def test_stroke_map_is_per_pixel(tmp_path):
    """On a deformable model the multiplier map itself reaches the sampling offsets."""
    st = Stylizer.from_pretrained(str(tiny_model_file(tmp_path / "d.safetensors", deformable=True)), "cpu")
    for din in st.model.dins.values():  # give the zero-initialised offset predictors something to scale
        for p in din.parameters():
            torch.nn.init.normal_(p, 0, 0.2)
    x = img()
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    out = st.stylize(x, A, style_size=SS, stroke_map=ramp)
    small, large = st.stylize(x, A, style_size=SS, stroke_size=0.5), st.stylize(x, A, style_size=SS, stroke_size=2)
    left, right = (out - small).abs()[..., :8].mean(), (out - large).abs()[..., -8:].mean()
    assert left < (out - large).abs()[..., :8].mean() and right < (out - small).abs()[..., -8:].mean()


@pytest.mark.filterwarnings("ignore:no trained weights")
def test_seed_fixes_untrained_models():
    m1, m2, m3 = (Stylizer.from_pretrained("din-mobilenet-vgg", "cpu", seed=s).model for s in (1, 1, 2))
    state = torch.get_rng_state()
    key = "bottleneck.0.body.0.dw.conv.weight"
    assert torch.equal(m1.state_dict()[key], m2.state_dict()[key])
    assert not torch.equal(m1.state_dict()[key], m3.state_dict()[key])
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone


def test_inputs_come_back_as_the_same_kind(st, tmp_path):
    x = img()
    ref = st.stylize(x, A, style_size=SS)
    u8 = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    x8 = torch.from_numpy(u8).permute(2, 0, 1)[None].float() / 255
    ref8 = st.stylize(x8, A, style_size=SS)
    out = st.stylize(u8, A, style_size=SS)
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    assert np.abs(out.astype(int) - (ref8[0].permute(1, 2, 0).numpy() * 255).round()).max() <= 1
    rgba = np.concatenate([u8, np.full((48, 64, 1), 77, np.uint8)], 2)
    assert np.array_equal(st.stylize(rgba, A, style_size=SS)[..., 3], rgba[..., 3])
    pil = st.stylize(Image.fromarray(rgba, "RGBA"), A, style_size=SS)
    assert pil.mode == "RGBA" and pil.getpixel((3, 3))[3] == 77
    assert st.stylize(x[0], A, style_size=SS).shape == (3, 48, 64)
    assert torch.allclose(st.stylize(x[0], A, style_size=SS), ref[0])
    x4 = torch.cat([x, torch.full((1, 1, 48, 64), 0.25)], 1)
    assert torch.equal(st.stylize(x4, A, style_size=SS)[:, 3:], x4[:, 3:])
    Image.fromarray(u8).save(tmp_path / "c.png")
    got = st.stylize(tmp_path / "c.png", A, style_size=SS)
    assert isinstance(got, Image.Image) and got.size == (64, 48)


def test_exif_rotated_input_comes_out_upright(st, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (64, 32), (200, 30, 30)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert st.stylize(str(tmp_path / "r.jpg"), A, style_size=SS).size == (32, 64)


def test_saved_codes_are_reused_and_checked(st, tmp_path):
    x = img()
    code = st.encode_style(A, style_size=SS)
    code.save(tmp_path / "a.safetensors")
    assert torch.equal(st.stylize(x, str(tmp_path / "a.safetensors")), st.stylize(x, A, style_size=SS))
    meta = StyleCode.load(tmp_path / "a.safetensors").meta
    assert meta["style_size"] == SS and meta["arch"] == "din-mobilenet-vgg" and meta["weights"] == st.fingerprint
    other = Stylizer.from_pretrained(str(tiny_model_file(tmp_path / "o.safetensors", widths=(8, 16, 64))), "cpu")
    with pytest.raises(DinstyleError, match="a.safetensors: style code is for another din-mobilenet-vgg configuration"):
        other.stylize(x, str(tmp_path / "a.safetensors"))
    with pytest.raises(UsageError, match="fixed style size"):
        st.stylize(x, str(tmp_path / "a.safetensors"), style_size=2 * SS)
    assert st.stylize(x, str(tmp_path / "a.safetensors"), stroke_size=2).shape == x.shape  # a scale, not a size


def test_builtin_styles(st):
    out = st.stylize(img(), "builtin:irises", style_size=SS)
    assert out.shape == (1, 3, 48, 64)
    with pytest.raises(DinstyleError, match="no such built-in style.*irises"):
        st.stylize(img(), "builtin:nope")


def test_tiles_forced_automatic_and_after_out_of_memory(st, monkeypatch):
    x = img(400, 384)
    ref = st.stylize(x, A, style_size=SS)
    assert (st.stylize(x, A, style_size=SS, tile=48) - ref).abs().max() < 1e-4
    assert (st.stylize(x, A, style_size=SS, max_pixels_untiled=5000) - ref).abs().max() < 1e-4
    real = st.model.stylize

    def small_memory(content, *a, **k):  # pretend anything over 350x350 does not fit
        if content.shape[-2] * content.shape[-1] > 350 * 350:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(content, *a, **k)

    monkeypatch.setattr(st.model, "stylize", small_memory)
    with pytest.warns(UserWarning, match="out of memory"):
        out = st.stylize(x, A, style_size=SS)
    assert (out - ref).abs().max() < 1e-4


def test_a_fresh_code_object_passes_its_own_check(st):
    code = st.encode_style(A, style_size=SS)
    assert st.stylize(img(), code).shape == (1, 3, 48, 64)


def test_a_style_file_is_hashed_and_decoded_once_per_batch(st, tmp_path, monkeypatch):
    import dinstyle.api as api
    import dinstyle.runtime.sources as sources

    path = tmp_path / "style-once.png"
    tensor_to_pil(img(40, 40, seed=9)).save(path)
    calls = {"sha": 0, "open": 0}
    real_sha, real_open = api.file_sha256, sources.open_image

    def sha(p):
        calls["sha"] += 1
        return real_sha(p)

    def open_(*a, **k):
        calls["open"] += 1
        return real_open(*a, **k)

    monkeypatch.setattr(api, "file_sha256", sha)
    monkeypatch.setattr(sources, "open_image", open_)
    outs = [st.stylize(img(seed=i), str(path)) for i in range(3)]
    assert calls == {"sha": 1, "open": 1} and len(outs) == 3
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # touched: hash again
    st.stylize(img(), str(path))
    assert calls["sha"] == 2 and calls["open"] == 1  # same bytes: same code, still no decode


def test_builtin_style_credits_match_the_table():
    from pathlib import Path

    import dinstyle
    from dinstyle.io.builtin_styles import STYLES, sources_markdown

    assets = Path(dinstyle.__file__).parent / "assets" / "styles"
    assert (assets / "SOURCES.md").read_text() == sources_markdown()  # regenerate with sources_markdown()
    assert {p.stem for p in assets.glob("*.jpg")} == set(STYLES)
