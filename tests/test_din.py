"""The DIN layer: AdaIN as a special case, batch folding, identity initialisation."""
import torch

from dinstyle.layers.din import DIN, adain, dynamic_conv2d, dynamic_conv2d_reference, identity_kernel, instance_stats
from dinstyle.models.style import DINSpec, StyleEncoder
from dinstyle.backbones import create_backbone


def test_din_k1_depthwise_with_style_stats_equals_adain():
    torch.manual_seed(0)
    content, style = torch.randn(3, 16, 9, 11) * 3 + 1, torch.randn(3, 16, 7, 5) * 2 - 4
    mean, std = instance_stats(style)
    din = DIN(16, kernel_size=1, groups=16)
    out = din(content, std.view(3, 16, 1, 1, 1), mean.view(3, 16))
    assert torch.allclose(out, adain(content, style), atol=1e-5)


def test_batch_folded_dynamic_conv_equals_per_sample_loop():
    torch.manual_seed(1)
    for k, groups in [(1, 1), (3, 1), (3, 4), (3, 8), (5, 2)]:
        x = torch.randn(4, 8, 10, 13)
        w, b = torch.randn(4, 8, 8 // groups, k, k), torch.randn(4, 8)
        assert torch.allclose(dynamic_conv2d(x, w, b, groups), dynamic_conv2d_reference(x, w, b, groups), atol=1e-5)


def test_one_sample_does_not_depend_on_the_others():
    torch.manual_seed(2)
    x, w, b = torch.randn(3, 8, 12, 12), torch.randn(3, 8, 2, 3, 3), torch.randn(3, 8)
    din = DIN(8, 3, groups=4)
    full = din(x, w, b)
    x2, w2, b2 = x.clone(), w.clone(), b.clone()
    x2[1:] = torch.randn_like(x2[1:]) * 10
    w2[1:], b2[1:] = torch.randn_like(w2[1:]), torch.randn_like(b2[1:])
    assert torch.allclose(din(x2, w2, b2)[0], full[0], atol=1e-6)
    assert torch.allclose(din(x[:1], w[:1], b[:1])[0], full[0], atol=1e-5)


def test_shared_code_broadcasts_over_the_batch():
    x, w, b = torch.randn(3, 8, 6, 6), torch.randn(1, 8, 8, 3, 3), torch.randn(1, 8)
    assert torch.allclose(dynamic_conv2d(x, w, b), dynamic_conv2d(x, w.expand(3, -1, -1, -1, -1), b.expand(3, -1)))


def test_identity_kernel_makes_din_plain_instance_norm():
    x = torch.randn(2, 12, 8, 8) * 5 + 3
    din = DIN(12, 3, groups=3)
    w = identity_kernel(12, 3, 3).expand(2, -1, -1, -1, -1)
    assert torch.allclose(din(x, w, torch.zeros(2, 12)), torch.nn.functional.instance_norm(x), atol=1e-5)


def test_untrained_style_encoder_starts_close_to_instance_norm():
    backbone = create_backbone("random-vgg19", seed=0)
    specs = [DINSpec("a", 16, 3, 4, 3), DINSpec("b", 8, 3, 8, 1)]
    code = StyleEncoder(backbone, specs, hidden=16)(torch.rand(2, 3, 40, 56))
    assert code["a.weight"].shape == (2, 16, 4, 3, 3) and code["a.bias"].shape == (2, 16)
    for spec in specs:
        ident = identity_kernel(spec.channels, spec.groups, spec.kernel_size)
        assert (code[f"{spec.name}.weight"] - ident).abs().max() < 0.05
        assert code[f"{spec.name}.bias"].abs().max() < 0.05


def test_tiny_feature_maps_do_not_break_reflect_padding():
    x = torch.randn(1, 4, 1, 2)
    assert dynamic_conv2d(x, torch.randn(1, 4, 4, 3, 3), None).shape == x.shape
