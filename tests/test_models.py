"""The architectures: gradients, sizes, style codes, masks, alpha, and self-describing model files."""
import os
import stat

import pytest
import torch

from dinstyle.io.tensorfiles import WeightsError, load_safetensors
from dinstyle.models import ARCHS, create_model, load_model, load_model_file, save_model
from dinstyle.models.stylecode import StyleCode, blend

from conftest import TINY, TINY_FAST

SMALL = {
    "din-mobilenet-vgg": TINY,
    "din-fast": TINY_FAST,
    "din-vgg": dict(style_encoder="random-vgg19", widths=(4, 8, 16, 32), din_groups=(4, 4), style_hidden=16),
    "adain": dict(style_encoder="random-vgg19"),
}


@pytest.mark.parametrize("arch", ["din-mobilenet-vgg", "din-fast", "din-vgg", "adain"])
def test_gradients_reach_trainable_parts_and_never_the_backbone(arch):
    torch.manual_seed(0)
    model = create_model(arch, **SMALL[arch]).train()
    out = model(torch.rand(2, 3, 32, 40), torch.rand(2, 3, 36, 28))
    out.square().mean().backward()
    frozen = tuple(model.frozen_prefixes())
    assert frozen, "the backbone must be registered as frozen"
    for name, p in model.named_parameters():
        if name.startswith(frozen):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    groups = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None}
    if arch != "adain":  # content encoder, decoder and the style side's weight/bias nets all learn
        assert "style_encoder" in groups and any(g.startswith("enc") for g in groups), groups
        names = [n for n, p in model.named_parameters() if p.grad is not None]
        assert any(".weight_nets." in n for n in names) and any(".bias_nets." in n for n in names)


@pytest.mark.parametrize("arch", ["din-mobilenet-vgg", "din-fast", "din-vgg", "adain"])
@pytest.mark.parametrize("size", [(17, 23), (31, 64), (8, 9), (50, 33)])
def test_any_content_and_style_size(arch, size):
    model = create_model(arch, **SMALL[arch]).eval()
    with torch.no_grad():
        code = model.encode_style(torch.rand(1, 3, size[1] + 5, size[0] + 3))
        out = model.stylize(torch.rand(1, 3, *size), code)
    assert out.shape == (1, 3, *size) and torch.isfinite(out).all()


def test_alpha_zero_is_the_contents_own_code_and_alpha_blends_towards_it(tiny_model):
    c, s = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        code = tiny_model.encode_style(s)
        recon = tiny_model.stylize(c, code, alpha=0.0)
        other = tiny_model.stylize(c, tiny_model.encode_style(torch.rand(1, 3, 32, 32)), alpha=0.0)
        full, half = tiny_model.stylize(c, code, alpha=1.0), tiny_model.stylize(c, code, alpha=0.5)
    assert torch.allclose(recon, other, atol=1e-6), "alpha=0 must not depend on the style"
    with torch.no_grad():
        assert torch.allclose(recon, tiny_model.stylize(c, tiny_model.content_code(c)), atol=1e-6)
    assert not torch.allclose(full, recon, atol=1e-4) and not torch.allclose(half, full, atol=1e-5)


def test_single_full_mask_equals_no_mask_and_masks_select_regions(tiny_model):
    c = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        a, b = tiny_model.encode_style(torch.rand(1, 3, 32, 32)), tiny_model.encode_style(torch.rand(1, 3, 32, 32) * 0.2)
        plain = tiny_model.stylize(c, a)
        ones = torch.ones(1, 1, 32, 48)
        assert torch.allclose(tiny_model.stylize(c, [a, b], masks=[ones, ones * 0]), plain, atol=1e-5)
        blended = blend([a, b], [1.0, 0.0])
        assert torch.allclose(tiny_model.stylize(c, blended), plain, atol=1e-6)


def test_batched_stylize_matches_single(tiny_model):
    tiny_model.double()  # float64: any difference is a real cross-sample leak, not conv-algorithm rounding
    c, s = torch.rand(3, 3, 24, 24, dtype=torch.float64), torch.rand(3, 3, 24, 24, dtype=torch.float64)
    with torch.no_grad():
        batch = tiny_model(c, s)
        single = torch.cat([tiny_model(c[i : i + 1], s[i : i + 1]) for i in range(3)])
    assert torch.allclose(batch, single, atol=1e-12)


def test_model_file_round_trip_is_self_describing(tmp_path, tiny_model):
    path = tmp_path / "m.safetensors"
    save_model(tiny_model, path, info={"steps": 3})
    tensors, meta = load_safetensors(path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, "atomic writes must not leave files private"
    assert meta["arch"] == "din-mobilenet-vgg" and meta["config"]["widths"] == [8, 16, 32]
    assert meta["style_backbone"] == "random-vgg19" and meta["version"] and meta["info"]["steps"] == 3
    assert not any(k.startswith("style_encoder.backbone.") for k in tensors), "frozen backbone must not be stored"
    loaded = load_model(str(path))
    c, s = torch.rand(1, 3, 20, 28), torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.allclose(loaded(c, s), tiny_model.eval()(c, s), atol=1e-6)
    save_model(tiny_model, tmp_path / "h.safetensors", half=True)
    assert load_model_file(tmp_path / "h.safetensors").encoder[0].conv.weight.dtype == torch.float32


def test_bad_model_files_and_names_fail_clearly(tmp_path):
    with pytest.raises(WeightsError, match="neither a model file nor a known architecture"):
        load_model("no-such-model")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_model(str(junk))
    code = StyleCode({"a.weight": torch.zeros(1, 2, 2, 1, 1), "a.bias": torch.zeros(1, 2)})
    code.save(tmp_path / "code.safetensors")
    with pytest.raises(WeightsError, match="not a dinstyle model file"):
        load_model(str(tmp_path / "code.safetensors"))
    with pytest.raises(ValueError, match="unknown config keys"):
        create_model("din-mobilenet-vgg", nonsense=1)


def test_registry_lists_the_paper_architectures_and_default_is_labelled_untrained():
    assert {"din-mobilenet-vgg", "din-vgg", "adain"} <= set(ARCHS)
    with pytest.warns(UserWarning, match="UNTRAINED"):
        import warnings

        warnings.simplefilter("always")
        model = load_model("din-vgg", style_encoder="random-vgg19")
    assert model.info["trained"] is False


@pytest.mark.parametrize("arch", ["din-mobilenet-vgg", "din-fast"])
def test_stylize_is_reentrant_and_alpha_may_be_a_tensor(arch):
    """The DIN context is passed down, not kept on the model: a stylize call made from inside another
    one (a stats hook here) cannot change the outer call's codes or alpha."""
    torch.manual_seed(0)
    model = create_model(arch, **SMALL[arch]).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = model.encode_style(torch.rand(1, 3, 32, 32)), model.encode_style(torch.rand(1, 3, 32, 32))
        for v in b.tensors.values():
            v += 0.3 * torch.randn_like(v)
        ref = model.stylize(x, a, alpha=0.7)
        inner = []
        nested = model.stylize(x, a, alpha=0.7, stats_fn=lambda level, f: inner.append(model.stylize(x, b)) or None)
        as_tensor = model.stylize(x, a, alpha=torch.tensor(0.7))
    assert len(inner) == len(model.dins) and not torch.allclose(inner[0], ref, atol=1e-4)
    assert torch.equal(nested, ref)
    assert torch.allclose(as_tensor, ref, atol=1e-6)
