"""ONNX export: both graphs match PyTorch (<= 1e-3) at odd and even sizes, for din-mobilenet-vgg and adain."""
import json
import shutil
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dinstyle.cli import main  # noqa: E402
from dinstyle.errors import DinstyleError  # noqa: E402
from dinstyle.export import export_onnx, quantize_content  # noqa: E402
from dinstyle.layers.pool import pooling_matmul  # noqa: E402
from dinstyle.lite import LiteModel  # noqa: E402
from dinstyle.models import create_model, save_model  # noqa: E402
from conftest import TINY, TINY_FAST  # noqa: E402

SIZES = [(33, 47), (64, 64), (97, 130)]


def _models():
    torch.manual_seed(0)
    return {"din-mobilenet-vgg": create_model("din-mobilenet-vgg", **TINY).eval(),
            "din-fast": create_model("din-fast", **TINY_FAST).eval(),
            "adain": create_model("adain", style_encoder="random-vgg19").eval()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in _models().items():
            d = tmp_path_factory.mktemp(name)
            manifest = export_onnx(model, d / "onnx", check=name != "adain")
            out[name] = (model, d, manifest, LiteModel(d / "onnx"))
    return out


def _code(model, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return model.encode_style(torch.rand(1, 3, h, w, generator=g))


@pytest.mark.parametrize("arch", ["din-mobilenet-vgg", "din-fast", "adain"])
@pytest.mark.parametrize("hw", SIZES)
def test_content_graph_matches_pytorch(exported, arch, hw):
    model, d, manifest, lite = exported[arch]
    code = _code(model, 72, 56, seed=1)
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(2))
    for alpha in (1.0, 0.4):
        with torch.no_grad():
            ref = model.stylize(x, code, alpha=alpha).clamp(0, 1).numpy()
        out = lite.stylize_array(x.numpy(), {k: v.numpy() for k, v in code.tensors.items()}, alpha)
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-3, (arch, hw, alpha)


def test_alpha_exports_the_content_code_path(tmp_path):
    """din-fast at alpha < 1 (alpha blends towards the content's own code): the content graph reads the content's own
    code through the style encoder. Contents no larger than the code size: the graph's resize is plain
    bilinear (opset 17 has no antialiased one), which matches PyTorch's antialiased one when enlarging."""
    torch.manual_seed(0)
    model = create_model("din-fast", **TINY_FAST).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(model, tmp_path / "onnx")
    lite = LiteModel(tmp_path / "onnx")
    code = _code(model, 72, 56, seed=1)
    arrays = {k: v.numpy() for k, v in code.tensors.items()}
    for hw in [(33, 47), (64, 64)]:
        x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            ref = model.stylize(x, code, alpha=0.4).clamp(0, 1).numpy()
            own = model.stylize(x, model.content_code(x), alpha=1.0).clamp(0, 1).numpy()
        assert np.abs(lite.stylize_array(x.numpy(), arrays, 0.4) - ref).max() <= 1e-3, hw
        assert np.abs(lite.stylize_array(x.numpy(), arrays, 0.0) - own).max() <= 1e-3, hw


@pytest.mark.parametrize("arch", ["din-mobilenet-vgg", "din-fast", "adain"])
@pytest.mark.parametrize("hw", SIZES)
def test_style_graph_matches_pytorch(exported, arch, hw):
    model, d, manifest, lite = exported[arch]
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model.encode_style(x)
    out = lite.encode_style_array(x.numpy())
    assert set(out) == set(ref.tensors)
    for k, v in out.items():
        assert v.shape == tuple(ref[k].shape)
        assert np.abs(v - ref[k].numpy()).max() <= 1e-3, (arch, hw, k)


def test_manifest_describes_the_graphs(exported):
    import onnx

    model, d, manifest, _ = exported["din-mobilenet-vgg"]
    on_disk = json.loads((d / "onnx" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert manifest["arch"] == "din-mobilenet-vgg" and manifest["opset"] == 17
    assert manifest["normalisation"]["layout"] == "NCHW" and manifest["normalisation"]["range"] == [0.0, 1.0]
    assert manifest["code_keys"] == sorted(_code(model, 64, 64, 0).tensors)
    assert manifest["code_inputs"]["din8.weight"]["name"] == "din8_weight"
    assert manifest["parity_max_abs_diff"] <= 1e-3
    content = onnx.load(str(d / "onnx" / "content.onnx"))
    assert [i.name for i in content.graph.input] == manifest["content"]["inputs"]
    dims = [d.dim_param or d.dim_value for d in content.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, "height", "width"]
    style = onnx.load(str(d / "onnx" / "style_encoder.onnx"))
    assert [o.name for o in style.graph.output] == manifest["style_encoder"]["outputs"]


def test_traceable_adaptive_pool_is_exact():
    x = torch.rand(2, 5, 13, 7)
    for size in (3, 2, 5, 7):
        torch.testing.assert_close(pooling_matmul(x, size), F.adaptive_avg_pool2d(x, size))


def test_tiny_content_is_padded_not_rejected(exported):
    model, d, _, lite = exported["din-mobilenet-vgg"]
    code = {k: v.numpy() for k, v in _code(model, 64, 64, 0).tensors.items()}
    out = lite.stylize(np.random.rand(5, 11, 3).astype(np.float32), code)
    assert out.shape == (5, 11, 3) and 0 <= out.min() and out.max() <= 1


def test_existing_export_is_kept_unless_overwrite(exported):
    model, d, _, _ = exported["din-mobilenet-vgg"]
    before = (d / "onnx" / "content.onnx").read_bytes()
    with pytest.raises(DinstyleError, match="--overwrite"):
        export_onnx(model, d / "onnx", check=False)
    assert (d / "onnx" / "content.onnx").read_bytes() == before


def test_int8_content_graph_runs(exported, tmp_path):
    model, d, _, _ = exported["din-mobilenet-vgg"]
    target = tmp_path / "q"
    shutil.copytree(d / "onnx", target)
    path = quantize_content(target, mode="static", size=48, samples=2)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["int8"]["file"] == path.name and path.is_file()
    lite, int8 = LiteModel(target), LiteModel(target, content_file=path.name)
    code = {k: v.numpy() for k, v in _code(model, 64, 64, 0).tensors.items()}
    x = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    out = int8.stylize(x, code)
    assert out.shape == lite.stylize(x, code).shape and 0 <= out.min() and out.max() <= 1
    export_onnx(model, target, check=False, overwrite=True)  # re-export: the old int8 graph is stale
    assert not path.exists() and "int8" not in json.loads((target / "manifest.json").read_text())


def test_cli_export(tmp_path, capsys):
    torch.manual_seed(0)
    save_model(create_model("din-mobilenet-vgg", **TINY), tmp_path / "tiny.safetensors")
    assert main(["export", "onnx", "--model", str(tmp_path / "tiny.safetensors"), "-o", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert "din-mobilenet-vgg:tiny.safetensors" in out and "max |onnx - torch|" in out
    assert (tmp_path / "x" / "content.onnx").is_file()
    assert main(["export", "onnx", "--model", str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "y")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dinstyle: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y").exists()


@pytest.fixture(scope="module")
def exported_deform(tmp_path_factory):
    """A tiny deformable model whose offset predictors are non-zero, so the sampled offsets matter."""
    torch.manual_seed(0)
    model = create_model("din-mobilenet-vgg-deform", **TINY).eval()
    for din in model.dins.values():
        torch.nn.init.normal_(din.offset_pw.weight, std=0.5)
        torch.nn.init.normal_(din.offset_pw.bias, std=0.5)
    d = tmp_path_factory.mktemp("deform") / "onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = export_onnx(model, d)
    return model, manifest, LiteModel(d)


@pytest.mark.parametrize("hw", [(33, 47), (64, 64)])
def test_deformable_content_graph_matches_pytorch(exported_deform, hw):
    model, manifest, lite = exported_deform
    assert manifest["arch"] == "din-mobilenet-vgg-deform" and manifest["parity_max_abs_diff"] <= 1e-3
    code = _code(model, 72, 56, seed=1)
    arrays = {k: v.numpy() for k, v in code.tensors.items()}
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(2))
    for alpha in (1.0, 0.4):
        with torch.no_grad():
            ref = model.stylize(x, code, alpha=alpha).clamp(0, 1)
            undeformed = model.stylize(x, code, alpha=alpha, stroke=0.0).clamp(0, 1)
        assert (ref - undeformed).abs().max() > 0.05  # the offsets really move the taps
        out = lite.stylize_array(x.numpy(), arrays, alpha)
        assert out.shape == tuple(ref.shape)
        assert np.abs(out - ref.numpy()).max() <= 1e-3, (hw, alpha)
    img = lite.stylize(np.random.default_rng(0).random((*hw, 3)).astype(np.float32), arrays)
    assert img.shape == (*hw, 3) and 0 <= img.min() and img.max() <= 1
