"""din-mobilenet, the compact student: its sub-pixel conversion of din-magenta's upsampling, the start from
the teacher's layers, any size, tiles, files and export."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dinstyle.runtime.request import RunRequest
from dinstyle.models import create_model, load_model_file, save_model
from dinstyle.models.din_mobilenet import DINMobileNetConfig, from_teacher, level_names, subpixel_kernel
from dinstyle.runtime.runner import run_model


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return create_model("din-magenta").eval()


@pytest.fixture(scope="module")
def student(teacher):
    torch.manual_seed(1)
    return from_teacher(teacher)


def test_subpixel_kernel_is_upsample_then_conv():
    """Away from the borders (where nearest upsampling pads otherwise) the two maps are the same."""
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(6, 5, 3, 3, generator=g), torch.randn(2, 5, 11, 9, generator=g)
    ref = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, padding=1)
    sub = F.pixel_shuffle(F.conv2d(x, subpixel_kernel(w), padding=1), 2)
    assert (ref - sub)[..., 2:-2, 2:-2].abs().max() < 1e-5
    assert (ref - F.pixel_shuffle(F.conv2d(x, w.repeat(4, 1, 1, 1), padding=1), 2)).abs().max() > 0.1


def test_student_starts_from_the_teachers_layers(teacher, student):
    assert level_names(student.config) == ["res1a", "res1b", "res2a", "res2b", "res3a", "res3b", "up2", "out"]
    # res blocks 1, 3, 5 of the teacher's five, evenly spaced
    assert torch.equal(student.convs["res2a"].weight, teacher.convs["res3a"].weight)
    assert torch.equal(student.style_encoder.weight_nets["res3b"].weight, teacher.style_encoder.weight_nets["res5b"].weight)
    assert torch.equal(student.style_encoder.bias_nets["out"].bias, teacher.style_encoder.bias_nets["out"].bias)
    style = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(student.encode_style(style)["up2.weight"], teacher.encode_style(style)["up2.weight"])


@pytest.mark.parametrize("hw", [(1, 1), (33, 47), (64, 64)])
def test_any_size(student, hw):
    with torch.no_grad():
        y = student.stylize(torch.rand(1, 3, *hw), student.encode_style(torch.rand(1, 3, 40, 40)))
    assert y.shape == (1, 3, *hw) and torch.isfinite(y).all()


def test_inverted_blocks_build_and_run():
    m = create_model("din-mobilenet", block="inverted", res_blocks=2).eval()
    assert level_names(m.config) == ["res1a", "res2a", "up2", "out"]
    with torch.no_grad():
        assert m(torch.rand(1, 3, 20, 24), torch.rand(1, 3, 32, 32)).shape == (1, 3, 20, 24)
    with pytest.raises(ValueError, match="block must be one of"):
        create_model("din-mobilenet", block="ghost")


def test_tiles_match_the_whole_image(student):
    x = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        code = student.encode_style(torch.rand(1, 3, 48, 48))
        whole = student.stylize(x, code, alpha=0.6)
        tiled = run_model(student, x, RunRequest([code], alpha=0.6, tile=48, restore=False, dither=0))
    assert (tiled - whole).abs().max() < 2e-3


def test_model_file_round_trip(student, tmp_path):
    save_model(student, tmp_path / "s.safetensors", half=True)
    back = load_model_file(tmp_path / "s.safetensors")
    assert back.arch == "din-mobilenet" and back.config == DINMobileNetConfig()
    x, s = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert (back(x, s) - student(x, s)).abs().max() < 5e-2  # fp16 weights


def test_onnx_export_matches_pytorch(student, tmp_path):
    pytest.importorskip("onnxruntime")
    from dinstyle.export import export_onnx
    from dinstyle.lite import LiteModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(student, tmp_path / "onnx")
    lite = LiteModel(tmp_path / "onnx")
    style, content = torch.rand(1, 3, 72, 56), torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        ref = student.stylize(content, student.encode_style(style), alpha=0.6).numpy()
    out = lite.stylize_array(content.numpy(), lite.encode_style_array(style.numpy()), 0.6)
    assert np.abs(out - ref).max() <= 1e-3
