"""`dinstyle profile`: the AdaIN reference count and the din-mobilenet-vgg budget."""
import json

from dinstyle.cli import main
from dinstyle.eval.profile import profile_all


def test_adain_reference_and_din_mobilenet_budget_at_512():
    r = profile_all(archs=["adain", "din-mobilenet-vgg"], sizes=(512,))
    adain, din = r["adain"]["gmacs"]["content"]["512"], r["din-mobilenet-vgg"]["gmacs"]["content"]["512"]
    assert abs(adain - 126.5) < 0.5, adain  # VGG-19 to relu4_1 + mirrored decoder, counted independently
    assert din <= 3.2 and adain / din >= 40, (din, adain / din)
    assert r["din-mobilenet-vgg"]["params"]["content"] < r["din-mobilenet-vgg"]["params"]["style"]


def test_dynamic_convs_are_counted(tiny_model):
    from dinstyle.eval.profile import profile_model

    from dinstyle.models import create_model
    from conftest import TINY

    base = profile_model(tiny_model, sizes=(64,))["gmacs"]["content"]["64"]
    # a 5x5 instead of 3x3 dynamic kernel must raise the count by exactly the dynamic convs' extra MACs
    k5 = create_model("din-mobilenet-vgg", **{**TINY, "din_kernel": 5})
    more = profile_model(k5, sizes=(64,))["gmacs"]["content"]["64"]
    w2, w4, w8 = TINY["widths"]
    g8, g4, g2 = TINY["din_groups"]
    expected = sum((64 // s) ** 2 * c * (c // g) * (25 - 9) for s, c, g in [(8, w8, g8), (4, w4, g4), (2, w2, g2)]) / 1e9
    assert abs((more - base) - expected) < 1e-6


def test_profile_cli_json_schema(capsys):
    assert main(["profile", "--json", "--sizes", "64,96"]) == 0
    out = json.loads(capsys.readouterr().out)
    for arch in ("din-mobilenet-vgg", "din-vgg", "adain"):
        r = out[arch]
        assert set(r) == {"params", "gmacs"} and set(r["params"]) == {"style", "content"}
        assert all(isinstance(v, int) for v in r["params"].values())
        assert set(r["gmacs"]["content"]) == {"64", "96"} and r["gmacs"]["content"]["96"] > r["gmacs"]["content"]["64"]


def test_profile_cli_rejects_bad_sizes(capsys):
    assert main(["profile", "--sizes", "big"]) == 2
    assert "sizes" in capsys.readouterr().err


def test_instance_norms_are_counted(tiny_model):
    import torch
    from dinstyle.eval.profile import _measure
    from dinstyle.layers.din import DIN

    din, x = DIN(8, 1, groups=8), torch.rand(1, 8, 10, 10)
    _, macs, _ = _measure(din, lambda: din(x, torch.ones(1, 8, 1, 1, 1), torch.zeros(1, 8)))
    assert macs == 8 * 100 + 2 * 8 * 100  # the 1x1 depthwise dynamic conv + 2 MACs per element of instance norm
    # and inside a whole model, where DIN's parts are called one by one
    code = tiny_model.encode_style(torch.rand(1, 3, 64, 64))
    _, with_norms, _ = _measure(tiny_model, lambda: tiny_model.stylize(torch.rand(1, 3, 64, 64), code))
    for din in tiny_model.dins.values():
        din.instance_norm.uncounted_macs = lambda x: 0
    _, without, _ = _measure(tiny_model, lambda: tiny_model.stylize(torch.rand(1, 3, 64, 64), code))
    w2, w4, w8 = 8, 16, 32
    assert with_norms - without == 2 * (8 * 8 * w8 + 16 * 16 * w4 + 32 * 32 * w2)
