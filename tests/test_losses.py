"""The training objective: content, style (mean/std), identity and TV terms."""
import pytest
import torch

from dinstyle.backbones import create_backbone
from dinstyle.errors import UsageError
from dinstyle.train.losses import LossWeights, StyleTransferLoss, total_variation


@pytest.fixture(scope="module")
def net():
    return create_backbone("random-vgg19", seed=0)


def _images(seed=0, n=2, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_terms_vanish_at_their_targets(net):
    loss = StyleTransferLoss(net, net, LossWeights(1.0, 10.0, 1.0, 0.0))
    content, style = _images(0), _images(1)
    at_content = loss(content, content, style, reconstruction=content)
    assert at_content["content"].item() == pytest.approx(0.0, abs=1e-6)
    assert at_content["identity"].item() == 0.0
    assert at_content["style"].item() > 0
    at_style = loss(style, content, style)
    assert at_style["style"].item() == pytest.approx(0.0, abs=1e-6)
    assert at_style["content"].item() > 0 and "identity" not in at_style  # no reconstruction given


def test_loss_is_the_weighted_sum_and_zero_weights_drop_terms(net):
    content, style, out = _images(0), _images(1), _images(2)
    base = StyleTransferLoss(net, net, LossWeights(1.0, 1.0, 1.0, 1.0))(out, content, style, content * 0.5)
    scaled = StyleTransferLoss(net, net, LossWeights(2.0, 3.0, 0.0, 0.5))
    terms = scaled(out, content, style, content * 0.5)
    assert set(terms) == {"content", "style", "tv", "loss"} and scaled.term_names() == ["content", "style", "tv"]
    assert terms["content"].item() == pytest.approx(2 * base["content"].item(), rel=1e-5)
    assert terms["style"].item() == pytest.approx(3 * base["style"].item(), rel=1e-5)
    assert terms["tv"].item() == pytest.approx(0.5 * total_variation(out).item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(sum(terms[k].item() for k in ("content", "style", "tv")), rel=1e-6)


def test_gradient_reaches_the_output_only(net):
    loss = StyleTransferLoss(net, net, LossWeights())
    content, style = _images(0), _images(1).requires_grad_(True)
    out = _images(2).requires_grad_(True)
    loss(out, content, style, out)["loss"].backward()
    assert out.grad is not None and out.grad.abs().sum() > 0 and style.grad is None


def test_losses_are_fp32_under_bf16_autocast(net):
    loss = StyleTransferLoss(net, net, LossWeights(tv=1.0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = loss(_images(2, 1, 16), _images(0, 1, 16), _images(1, 1, 16), _images(3, 1, 16))
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in terms.values())


def test_separate_or_shared_networks_by_name():
    shared = StyleTransferLoss.from_names("random-vgg19", "random-vgg19", 0, LossWeights())
    assert shared.shared and shared.content_layer == "relu4_1"
    mixed = StyleTransferLoss.from_names("random-vgg19", "random-efficientnet-lite0", 0, LossWeights(), 2, (0, 1))
    assert not mixed.shared and mixed.content_layer == "relu3_1" and mixed.style_layers == ["stage1", "stage2"]
    terms = mixed(_images(2, 1), _images(0, 1), _images(1, 1))
    assert torch.isfinite(terms["loss"])
    with pytest.raises(UsageError, match="unknown backbone"):
        StyleTransferLoss.from_names("alexnet", "vgg19", 0, LossWeights())


def test_feature_normalisation_divides_by_fixed_per_tap_scales(net):
    raw = StyleTransferLoss(net, net, LossWeights(1.0, 0.0, 0.0, 0.0), normalize=False)
    scaled = StyleTransferLoss(net, net, LossWeights(1.0, 0.0, 0.0, 0.0))
    again = StyleTransferLoss(net, net, LossWeights(1.0, 0.0, 0.0, 0.0))
    assert scaled.content_scale == again.content_scale > 0  # deterministic
    assert set(scaled.style_scales) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1"}
    args = (_images(2), _images(0), _images(1))
    ratio = raw(*args)["content"].item() / scaled(*args)["content"].item()
    assert ratio == pytest.approx(scaled.content_scale**2, rel=1e-4)
