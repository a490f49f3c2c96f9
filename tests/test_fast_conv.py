"""The exact rewrites of issue 24 against their plain references: half-size convs (layers.fast_conv), the fused
instance norm + 1x1 DIN, the two-pass statistics, and din-magenta's pass as a whole."""
import pytest
import torch
import torch.nn.functional as F

from dinstyle.layers.din import DIN, instance_stats, instance_stats_reference, pad_same
from dinstyle.layers.fast_conv import (depth_to_space, full_size_contract, phase_major, same_conv_reference,
                                       same_conv_s2d, space_to_depth, strided_conv3x3_s2d, subpixel_kernel,
                                       upsample_conv3x3, upsample_conv3x3_reference)
from dinstyle.models.din_magenta import DINMagenta

LAYOUTS = [torch.contiguous_format, torch.channels_last]


def _in(layout, *shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).contiguous(memory_format=layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_depth_to_space_is_pixel_shuffle_in_phase_major_order(layout):
    y = _in(layout, 2, 12, 5, 7)
    ref = F.pixel_shuffle(y, 2)
    out = depth_to_space(phase_major(y, dim=1).contiguous(memory_format=layout))
    assert torch.equal(out, ref)
    assert out.is_contiguous(memory_format=layout)  # the engine's layout survives
    back = space_to_depth(out)
    assert torch.equal(back, phase_major(F.pixel_unshuffle(ref, 2), dim=1))
    assert back.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (5, 8), (33, 20)])
def test_upsample_conv_matches_upsample_then_reflect_conv(layout, hw):
    torch.manual_seed(0)
    x, w = _in(layout, 2, 6, *hw), torch.randn(4, 6, 3, 3)
    ref = upsample_conv3x3_reference(x, w)
    out = upsample_conv3x3(x, w)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_subpixel_kernel_phase_taps():
    """Phase (0, 0) of a 3x3 kernel that only reads its top-left tap reads the low-res pixel above-left."""
    w = torch.zeros(1, 1, 3, 3)
    w[0, 0, 0, 0] = 1.0
    k = subpixel_kernel(w).view(4, 3, 3)
    assert k[0, 0, 0] == 1 and k[0].sum() == 1  # phase (0, 0): upsampled row 2i-1 is low-res row i-1
    assert k[3, 1, 1] == 1 and k[3].sum() == 1  # phase (1, 1): upsampled row 2i is low-res row i


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k,cin,cout", [(9, 3, 8), (9, 8, 3), (3, 4, 5), (5, 2, 6)])
@pytest.mark.parametrize("hw", [(2, 2), (6, 10), (40, 24), (7, 8)])
def test_same_conv_s2d_matches_padded_conv(layout, k, cin, cout, hw):
    torch.manual_seed(1)
    x, w, b = _in(layout, 2, cin, *hw), torch.randn(cout, cin, k, k) * 0.1, torch.randn(cout)
    ref = same_conv_reference(x, w, b)
    out = same_conv_s2d(x, w, b)  # (7, 8) is odd: the plain conv, same answer; (2, 2): replicate padding
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(same_conv_s2d(x, w), same_conv_reference(x, w), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hw", [(2, 2), (4, 6), (20, 12)])
def test_strided_conv_reads_the_space_to_depth_map(layout, hw):
    torch.manual_seed(5)
    x, w, b = _in(layout, 2, 3, *hw), torch.randn(5, 3, 3, 3), torch.randn(5)
    ref = F.conv2d(pad_same(x, 3), w, b, stride=2)
    torch.testing.assert_close(strided_conv3x3_s2d(space_to_depth(x), w, b), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hw", [(8, 12), (7, 8), (2, 4)])
def test_full_size_contract_matches_the_two_convs(layout, hw):
    torch.manual_seed(6)
    first, second = torch.nn.Conv2d(3, 4, 9), torch.nn.Conv2d(4, 6, 3, stride=2)
    x = _in(layout, 1, 3, *hw)
    with torch.no_grad():
        ref = F.relu(F.conv2d(pad_same(F.relu(first(pad_same(x, 9))), 3), second.weight, second.bias, stride=2))
        torch.testing.assert_close(full_size_contract(x, first, second), ref, atol=2e-5, rtol=1e-5)


def test_rewrites_give_the_same_gradients():
    """Training runs the rewrites too: the kernels are derived from the layer's weight on every call."""
    torch.manual_seed(2)
    x = torch.randn(1, 4, 12, 8)
    for fast, ref, w in [(same_conv_s2d, same_conv_reference, torch.randn(3, 4, 9, 9)),
                         (upsample_conv3x3, upsample_conv3x3_reference, torch.randn(3, 4, 3, 3))]:
        grads = []
        for fn in (fast, ref):
            wi = w.clone().requires_grad_()
            (fn(x, wi) * torch.linspace(0, 1, 3).view(1, 3, 1, 1)).sum().backward()
            grads.append(wi.grad)
        torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_instance_stats_match_var_mean_even_with_a_large_mean(layout):
    x = _in(layout, 2, 5, 37, 23, scale=0.01, shift=100.0)  # E[x^2] - E[x]^2 would lose every digit here
    mean, std = instance_stats(x)
    rmean, rstd = instance_stats_reference(x.double())
    torch.testing.assert_close(mean.double(), rmean, rtol=1e-6, atol=0)
    torch.testing.assert_close(std.double(), rstd, rtol=1e-4, atol=0)


def _din_reference(x, weights, biases, masks=None, stats=None):
    """IN, then a 1x1 depthwise conv per code, weighted by its mask: the general path written out."""
    mean, std = stats or instance_stats_reference(x)
    xn = (x - mean) / std
    y = 0
    for i, (w, b) in enumerate(zip(weights, biases)):
        yi = F.conv2d(xn, w[0], b[0], groups=x.shape[1]) if w.shape[0] == 1 else torch.cat(
            [F.conv2d(xn[j:j + 1], w[j], b[j], groups=x.shape[1]) for j in range(x.shape[0])])
        if masks is not None:
            yi = yi * F.interpolate(masks[i], size=x.shape[-2:], mode="bilinear", align_corners=False)
        y = y + yi
    return y


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_din_matches_norm_then_conv(layout):
    torch.manual_seed(3)
    c = 6
    din = DIN(c, kernel_size=1, groups=c)
    assert din._is_affine()
    x = _in(layout, 2, c, 16, 12, scale=2.0, shift=1.0)
    w1, b1 = torch.randn(2, c, 1, 1, 1), torch.randn(2, c)  # one code per sample
    w2, b2 = torch.randn(1, c, 1, 1, 1), torch.randn(1, c)  # one code for the batch
    torch.testing.assert_close(din(x, w1, b1), _din_reference(x, [w1], [b1]), atol=1e-5, rtol=1e-5)
    stats = (torch.randn(2, c, 1, 1), torch.rand(2, c, 1, 1) + 0.5)  # injected (tiles, video)
    torch.testing.assert_close(din(x, w2, b2, stats=stats), _din_reference(x, [w2], [b2], stats=stats),
                               atol=1e-5, rtol=1e-5)
    m = torch.rand(1, 1, 8, 6)
    masks = [m, 1 - m]
    torch.testing.assert_close(din(x, [w1, w2], [b1, b2], masks=masks),
                               _din_reference(x, [w1, w2], [b1, b2], masks=masks), atol=1e-5, rtol=1e-5)


def test_wider_kernels_keep_the_general_path():
    assert not DIN(6, kernel_size=3, groups=6)._is_affine()
    assert not DIN(6, kernel_size=1, groups=3)._is_affine()


def _reference_pass(model: DINMagenta, x, code):
    """din-magenta's pass as first written: every full-size conv at full size (upsample, reflect pad, conv)."""
    from dinstyle.models.base import DINContext

    c = model.contract
    h = F.relu(F.conv2d(pad_same(x, 9), c[0].conv.weight, c[0].conv.bias))
    h = c[2](c[1](h))
    ctx = DINContext([code], None, None, None)

    def conv_din(name, t):
        conv = model.convs[name]
        return model.apply_din(ctx, name, conv(pad_same(t, conv.kernel_size[0])))

    for i in range(1, model.config.res_blocks + 1):
        h = h + conv_din(f"res{i}b", F.relu(conv_din(f"res{i}a", h)))
    h = F.relu(conv_din("up2", F.interpolate(h, scale_factor=2.0, mode="nearest")))
    h = F.relu(conv_din("up1", F.interpolate(h, scale_factor=2.0, mode="nearest")))
    return torch.sigmoid(conv_din("out", h))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_din_magenta_pass_matches_the_full_size_formulation(layout):
    torch.manual_seed(4)
    model = DINMagenta().eval()
    with torch.no_grad():
        for p in model.parameters():  # untrained weights at a scale where every layer matters
            p.add_(torch.randn_like(p) * 0.05)
        x = torch.rand(1, 3, 48, 40).contiguous(memory_format=layout)
        code = model.encode_style(torch.rand(1, 3, 64, 64))
        out = model.stylize(x, code)
        ref = _reference_pass(model, x, code)
    assert out.shape == ref.shape == (1, 3, 48, 40)
    assert (out - ref).abs().max().item() * 255 < 0.01
