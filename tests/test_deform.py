"""Deformable DIN: the fast batch-folded operation against a slow per-sample, per-pixel reference, its
border rules, and the din-mobilenet-vgg-deform model (init = plain DIN, stroke control, profile, files)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dinstyle.layers.deform import (DeformableDIN, _torchvision_deform_conv2d, deform_dynamic_conv2d,
                                    deform_dynamic_conv2d_torchvision)
from dinstyle.layers.din import DIN, dynamic_conv2d, pad_same
from dinstyle.models import create_model
from conftest import TINY

D = torch.float64


# ---------------------------------------------------------------- slow reference (explicit loops)
def bilinear(img: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """img (C, H, W) at real position (y, x); corners outside the map read zero."""
    y0, x0 = math.floor(float(y.detach())), math.floor(float(x.detach()))
    ly, lx = y - y0, x - x0
    out = torch.zeros(img.shape[0], dtype=img.dtype)
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < img.shape[1] and 0 <= xx < img.shape[2]:
                out = out + wy * wx * img[:, yy, xx]
    return out


def reference(x, weight, bias, offset, mask, groups):
    """One sample, one output pixel, one tap at a time: tap (a, b) of pixel (i, j) reads the padded input
    at (i + a + dy, j + b + dx), times the mask, and the per-sample grouped kernel sums the taps."""
    bsz, c, h, w = x.shape
    cout, k = weight.shape[1], weight.shape[-1]
    kk, g_off = k * k, offset.shape[1] // (2 * k * k)
    cpo, cin_g, cout_g = c // g_off, c // groups, cout // groups
    out = torch.zeros(bsz, cout, h, w, dtype=x.dtype)
    for n in range(bsz):
        xp, wn = pad_same(x[n : n + 1], k)[0], weight[n if weight.shape[0] > 1 else 0]
        for i in range(h):
            for j in range(w):
                cols = []  # (C, kk) sampled values at this pixel
                for t in range(kk):
                    a, b = divmod(t, k)
                    per_group = []
                    for g in range(g_off):
                        dy, dx = offset[n, g * 2 * kk + 2 * t, i, j], offset[n, g * 2 * kk + 2 * t + 1, i, j]
                        m = 1.0 if mask is None else mask[n, g * kk + t, i, j]
                        per_group.append(m * bilinear(xp[g * cpo : (g + 1) * cpo], i + a + dy, j + b + dx))
                    cols.append(torch.cat(per_group))
                cols = torch.stack(cols, dim=1)
                for o in range(cout):
                    gi = o // cout_g
                    val = (wn[o].reshape(cin_g, kk) * cols[gi * cin_g : (gi + 1) * cin_g]).sum()
                    out[n, o, i, j] = val + (0 if bias is None else bias[n if bias.shape[0] > 1 else 0, o])
    return out


def random_case(b=2, c=4, h=4, w=5, k=3, groups=2, g_off=2, wb=None, seed=0, spread=2.5):
    gen = torch.Generator().manual_seed(seed)
    wb = b if wb is None else wb
    x = torch.randn(b, c, h, w, generator=gen, dtype=D)
    weight = torch.randn(wb, c, c // groups, k, k, generator=gen, dtype=D)
    bias = torch.randn(wb, c, generator=gen, dtype=D)
    # fractional offsets (never on integer positions, where bilinear is not differentiable), some outside
    offset = (torch.rand(b, 2 * g_off * k * k, h, w, generator=gen, dtype=D) * 2 - 1) * spread
    offset = offset + 0.13 * (offset.frac().abs() < 0.05)
    mask = torch.rand(b, g_off * k * k, h, w, generator=gen, dtype=D) * 2
    return [t.requires_grad_() for t in (x, weight, bias, offset, mask)]


# ---------------------------------------------------------------- the operation
@pytest.mark.parametrize("case", [dict(), dict(wb=1, g_off=1, groups=4), dict(c=3, groups=1, g_off=3, k=1),
                                  dict(b=1, h=3, w=2, k=3, groups=1, g_off=1, spread=4.0)])
def test_fast_matches_reference_values_and_gradients(case):
    groups = case.get("groups", 2)
    x, weight, bias, offset, mask = random_case(**case)
    fast = deform_dynamic_conv2d(x, weight, bias, offset, mask, groups)
    slow = reference(x, weight, bias, offset, mask, groups)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)
    r = torch.randn_like(fast)
    g_fast = torch.autograd.grad((fast * r).sum(), (x, weight, bias, offset, mask))
    g_slow = torch.autograd.grad((slow * r).sum(), (x, weight, bias, offset, mask))
    for name, a, b in zip(("x", "weight", "bias", "offset", "mask"), g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"gradient w.r.t. {name}")


def test_gradcheck_offsets_and_mask():
    x, weight, bias, offset, mask = random_case(b=1, c=2, h=3, w=3, groups=1, g_off=1)
    assert torch.autograd.gradcheck(lambda o, m, xx: deform_dynamic_conv2d(xx, weight, bias, o, m, 1),
                                    (offset, mask, x), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("k,groups,size", [(3, 1, (7, 9)), (3, 8, (5, 6)), (5, 2, (8, 7)), (1, 1, (4, 4)),
                                           (3, 4, (1, 1)), (5, 2, (2, 3))])  # last two: replicate padding
def test_zero_offsets_unit_mask_equal_plain_dynamic_conv(k, groups, size):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 8, *size, generator=gen)
    weight, bias = torch.randn(3, 8, 8 // groups, k, k, generator=gen), torch.randn(3, 8, generator=gen)
    offset, mask = torch.zeros(3, 2 * k * k, *size), torch.ones(3, k * k, *size)
    plain = dynamic_conv2d(x, weight, bias, groups)
    torch.testing.assert_close(deform_dynamic_conv2d(x, weight, bias, offset, mask, groups), plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(deform_dynamic_conv2d(x.to(D), weight.to(D), bias.to(D), offset.to(D), None, groups),
                               plain.to(D), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dy,dx", [(1, -2), (-3, 0), (2, 2)])
def test_integer_offsets_equal_shifted_input(dy, dx):
    x = torch.randn(2, 4, 6, 7, dtype=D)
    b, c, h, w = x.shape
    # k = 1, identity kernel: output (i, j) is the input at (i + dy, j + dx), zero outside
    eye = torch.eye(c, dtype=D).view(1, c, c, 1, 1)
    off = torch.tensor([dy, dx], dtype=D).view(1, 2, 1, 1).expand(b, 2, h, w)
    shifted = torch.zeros_like(x)
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    shifted[:, :, ys, xs] = x[:, :, max(0, dy) : min(h, h + dy), max(0, dx) : min(w, w + dx)]
    torch.testing.assert_close(deform_dynamic_conv2d(x, eye, None, off, None), shifted)
    # k = 3: the plain conv of the reflect-padded input shifted the same way (zeros shifted in)
    weight = torch.randn(b, c, c, 3, 3, dtype=D)
    xp = pad_same(x, 3)
    xp_shift = torch.zeros_like(xp)
    hp, wp = xp.shape[-2:]
    xp_shift[:, :, max(0, -dy) : min(hp, hp - dy), max(0, -dx) : min(wp, wp - dx)] = \
        xp[:, :, max(0, dy) : min(hp, hp + dy), max(0, dx) : min(wp, wp + dx)]
    expect = torch.cat([F.conv2d(xp_shift[n : n + 1], weight[n]) for n in range(b)])
    off3 = torch.tensor([dy, dx] * 9, dtype=D).view(1, 18, 1, 1).expand(b, 18, h, w)
    torch.testing.assert_close(deform_dynamic_conv2d(x, weight, None, off3, None), expect)


def test_offsets_outside_read_zero_padding():
    x = torch.randn(1, 3, 5, 5, dtype=D)
    weight, bias = torch.randn(1, 3, 3, 3, 3, dtype=D), torch.randn(1, 3, dtype=D)
    far = torch.full((1, 18, 5, 5), 50.0, dtype=D)  # every tap far outside: only the bias remains
    torch.testing.assert_close(deform_dynamic_conv2d(x, weight, bias, far, None),
                               bias.view(1, 3, 1, 1).expand(1, 3, 5, 5))
    # half a pixel above the top row (k = 1): half of the row, half of the zero outside
    eye = torch.eye(3, dtype=D).view(1, 3, 3, 1, 1)
    up = torch.zeros(1, 2, 5, 5, dtype=D)
    up[:, 0] = -0.5
    y = deform_dynamic_conv2d(x, eye, None, up, None)
    torch.testing.assert_close(y[:, :, 0], 0.5 * x[:, :, 0])
    torch.testing.assert_close(y[:, :, 1:], 0.5 * (x[:, :, 1:] + x[:, :, :-1]))


@pytest.mark.skipif(_torchvision_deform_conv2d() is None, reason="torchvision is not importable")
@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_torchvision_fast_path_matches(device):
    x, weight, bias, offset, mask = random_case(b=3, c=8, h=6, w=7, groups=4, g_off=2)
    args = [t.detach().to(device).requires_grad_() for t in (x, weight, bias, offset, mask)]
    ours = deform_dynamic_conv2d(*args, groups=4)
    theirs = deform_dynamic_conv2d_torchvision(*args, groups=4)
    torch.testing.assert_close(theirs, ours, rtol=1e-8, atol=1e-8)
    r = torch.randn_like(ours)
    for a, b in zip(torch.autograd.grad((ours * r).sum(), args), torch.autograd.grad((theirs * r).sum(), args)):
        torch.testing.assert_close(b, a, rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------- the layer and the model
def test_fresh_layer_is_plain_din():
    torch.manual_seed(0)
    layer, plain = DeformableDIN(16, 3, groups=4), DIN(16, 3, groups=4)
    x, weight, bias = torch.randn(2, 16, 9, 11), torch.randn(2, 16, 4, 3, 3), torch.randn(2, 16)
    torch.testing.assert_close(layer(x, weight, bias), plain(x, weight, bias), rtol=1e-5, atol=1e-5)
    offset, mask = layer.predict_offsets(layer.normalize(x))
    assert offset.abs().max() == 0 and torch.all(mask == 1)


def test_stroke_validation():
    layer, xn = DeformableDIN(4), torch.randn(1, 4, 6, 6)
    with pytest.raises(ValueError, match="stroke"):
        layer.predict_offsets(xn, -1.0)
    with pytest.raises(ValueError, match="stroke"):
        layer.predict_offsets(xn, torch.ones(1, 3, 6, 6))


def _tiny(arch="din-mobilenet-vgg-deform", seed=0):
    torch.manual_seed(seed)
    return create_model(arch, **TINY)


def test_untrained_deform_model_equals_plain_model():
    plain, deform = _tiny("din-mobilenet-vgg"), _tiny()
    missing, unexpected = deform.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(".offset_" in k for k in missing)
    style, content = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 29, 35)
    with torch.no_grad():
        torch.testing.assert_close(deform(content, style), plain(content, style), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [(37, 51), (13, 9)])
def test_deform_model_forward_backward_odd_sizes(size):
    model = _tiny()
    y = model(torch.rand(2, 3, *size), torch.rand(2, 3, 48, 40))
    assert y.shape == (2, 3, *size) and torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [model.dins[n].offset_pw.weight.grad for n in ("din8", "din4", "din2")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)  # zero-initialised, yet the offsets can learn


def test_stroke_changes_output_only_when_offsets_are_nonzero():
    model = _tiny().eval()
    content = torch.rand(1, 3, 40, 48)
    code = model.encode_style(torch.rand(1, 3, 64, 64))
    ramp = torch.linspace(0, 3, 48).view(1, 1, 1, 48).expand(1, 1, 40, 48)
    with torch.no_grad():
        base = model.stylize(content, code)
        for stroke in (3.0, 0.0, ramp):  # zero offsets: nothing to scale
            torch.testing.assert_close(model.stylize(content, code, stroke=stroke), base)
        for n in ("din8", "din4", "din2"):
            torch.nn.init.normal_(model.dins[n].offset_pw.weight, std=0.3)
        base = model.stylize(content, code)
        torch.testing.assert_close(model.stylize(content, code, stroke=1.0), base)
        torch.testing.assert_close(model.stylize(content, code, stroke=torch.ones(1, 1, 40, 48)), base)
        for stroke in (2.0, 0.0, ramp):
            assert (model.stylize(content, code, stroke=stroke) - base).abs().max() > 1e-3


def test_profile_counts_the_deformable_cost(monkeypatch):
    from dinstyle.eval.profile import profile_model
    from dinstyle.layers.deform import DeformConvOp

    model = _tiny()
    plain, deform = profile_model(_tiny("din-mobilenet-vgg"), (64,)), profile_model(model, (64,))
    assert deform["gmacs"]["content"]["64"] > plain["gmacs"]["content"]["64"]
    monkeypatch.setattr(DeformConvOp, "uncounted_macs", lambda self, x: 0)
    unsampled = profile_model(model, (64,))["gmacs"]["content"]["64"]
    assert plain["gmacs"]["content"]["64"] < unsampled < deform["gmacs"]["content"]["64"]  # predictor, sampling
    assert deform["params"]["content"] > plain["params"]["content"]
    assert deform["params"]["style"] == plain["params"]["style"]


def test_save_and_load_keeps_the_architecture(tmp_path):
    from dinstyle.models import load_model_file, save_model

    model = _tiny()
    torch.nn.init.normal_(model.dins["din4"].offset_pw.weight, std=0.1)
    save_model(model, tmp_path / "m.safetensors")
    back = load_model_file(tmp_path / "m.safetensors")
    assert back.arch == "din-mobilenet-vgg-deform" and isinstance(back.dins["din4"], DeformableDIN)
    content, style = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(back(content, style), model.eval()(content, style))
