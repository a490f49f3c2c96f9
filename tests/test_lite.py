"""The torch-free runtime: run in a fresh virtual environment holding only numpy, Pillow and onnxruntime,
and compared with PyTorch; plus its style-code reader and command-line errors (in this environment)."""
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dinstyle  # noqa: E402
from dinstyle.api import resize_long_side  # noqa: E402
from dinstyle.defaults import DITHER  # noqa: E402
from dinstyle.runtime.runner import dithered  # noqa: E402
from dinstyle.errors import DinstyleError  # noqa: E402
from dinstyle.export import export_onnx  # noqa: E402
from dinstyle.io.images import load_image, pil_to_tensor, tensor_to_pil  # noqa: E402
from dinstyle.lite import LiteModel, read_safetensors  # noqa: E402
from dinstyle.lite.__main__ import main as lite_main  # noqa: E402
from dinstyle.models import create_model, load_model, model_id, save_model  # noqa: E402
from dinstyle.models.stylecode import StyleCode  # noqa: E402
from conftest import TINY  # noqa: E402

VENV_PACKAGES = ["numpy", "pillow", "onnxruntime"]
SRC = str(Path(dinstyle.__file__).resolve().parents[1])
OFFLINE = re.compile(r"No matching distribution|Could not find a version|Failed to establish|ConnectionError|"
                     r"Network is unreachable|Temporary failure in name resolution|Max retries exceeded", re.I)


def _venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.fixture(scope="session")
def lite_python(request, tmp_path_factory) -> Path:
    """A virtual environment with only numpy, Pillow and onnxruntime, kept in the pytest cache between runs."""
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("dinstyle-lite-venv")) if cache else tmp_path_factory.mktemp("lite-venv")
    python, marker = _venv_python(root), root / "READY"
    if python.is_file() and marker.is_file() and marker.read_text() == " ".join(VENV_PACKAGES):
        return python
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True, capture_output=True)
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          *VENV_PACKAGES], capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        last = (pip.stderr.strip().splitlines() or ["?"])[-1]
        if OFFLINE.search(pip.stderr):
            pytest.skip(f"pip cannot reach a package index to build the torch-free venv: {last}")
        pytest.fail(f"pip install {' '.join(VENV_PACKAGES)} failed: {last}")
    marker.write_text(" ".join(VENV_PACKAGES))
    return python


def _image(path: Path, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    small = (rng.random((h // 6 + 1, w // 6 + 1, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).resize((w, h), Image.BILINEAR).save(path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model file, its PyTorch Stylizer, its export and two images."""
    d = tmp_path_factory.mktemp("lite")
    torch.manual_seed(0)
    save_model(create_model("din-mobilenet-vgg", **TINY), d / "tiny.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(str(d / "tiny.safetensors"))
        export_onnx(model, d / "onnx", style_size=96)
    return {"dir": d, "onnx": d / "onnx", "model": model,
            "content": _image(d / "content.png", 45, 61, 1), "style": _image(d / "style.png", 150, 110, 2)}


def _run_lite(python: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([str(python), "-m", "dinstyle.lite", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _torch_code(model, style_path: Path) -> StyleCode:
    """What the PyTorch API does: long side to the style size (96 here), then encode."""
    with torch.no_grad():
        return model.encode_style(resize_long_side(pil_to_tensor(load_image(style_path)), 96))


def _torch_stylize(model, content_path: Path, code: StyleCode, alpha: float = 1.0, restore: bool = True) -> np.ndarray:
    """What dinstyle's PyTorch path gives, restore included (alpha < 1 adds back what alpha 0 loses)."""
    x = pil_to_tensor(load_image(content_path))
    xd = dithered(x, DITHER)  # every pass's input carries the fixed dither (runtime/runner.py); the restore not
    with torch.no_grad():
        out = model.stylize(xd, code, alpha=alpha).clamp(0, 1)
        if restore and alpha < 1:
            out = out + (1 - alpha) * (x - model.stylize(xd, code, alpha=0.0).clamp(0, 1))
    return np.asarray(tensor_to_pil(out.clamp(0, 1)), dtype=np.int16)


def test_fresh_venv_has_no_torch(lite_python):
    probe = subprocess.run([str(lite_python), "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr


def test_lite_cli_without_torch_matches_pytorch(lite_python, setup):
    out = setup["dir"] / "venv_out.png"
    r = _run_lite(lite_python, "--model-dir", str(setup["onnx"]), "--style", str(setup["style"]),
                  str(setup["content"]), "-o", str(out))
    assert r.returncode == 0, r.stderr
    ref = _torch_stylize(setup["model"], setup["content"], _torch_code(setup["model"], setup["style"]))
    assert _pixels(out).shape == (45, 61, 3)
    assert np.abs(_pixels(out) - ref).max() <= 1  # 8-bit rounding only


def test_lite_cli_with_style_code_file(lite_python, setup):
    code = _torch_code(setup["model"], setup["style"])
    code.meta["model"] = model_id(setup["model"])
    code.save(setup["dir"] / "style.safetensors")
    out = setup["dir"] / "code_out.png"
    r = _run_lite(lite_python, "--model-dir", str(setup["onnx"]), "--style", str(setup["dir"] / "style.safetensors"),
                  "--alpha", "0.6", str(setup["content"]), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr  # the code was made by this very model
    ref = _torch_stylize(setup["model"], setup["content"], StyleCode.load(setup["dir"] / "style.safetensors"), 0.6)
    assert np.abs(_pixels(out) - ref).max() <= 1
    r = _run_lite(lite_python, "--model-dir", str(setup["onnx"]), "--style", str(setup["dir"] / "style.safetensors"),
                  "--alpha", "0.6", "--no-restore", str(setup["content"]), "-o", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr
    raw = _torch_stylize(setup["model"], setup["content"], StyleCode.load(setup["dir"] / "style.safetensors"), 0.6,
                         restore=False)
    assert np.abs(_pixels(out) - raw).max() <= 1 and np.abs(raw - ref).mean() > 1  # the flag really differs


def test_import_lite_does_not_import_torch():
    code = "import sys, dinstyle.lite, dinstyle.lite.__main__; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_safetensors_reader_matches_the_library(tmp_path):
    from safetensors.torch import save_file

    tensors = {"a": torch.randn(2, 3), "h": torch.randn(4).half(), "b": torch.randn(3, 1).bfloat16(),
               "i": torch.arange(5)}
    save_file(tensors, str(tmp_path / "t.safetensors"), metadata={"format": "x", "n": "1"})
    got, meta = read_safetensors(tmp_path / "t.safetensors")
    assert meta == {"format": "x", "n": "1"}
    for k, v in tensors.items():
        np.testing.assert_array_equal(got[k], v.float().numpy() if k == "b" else v.numpy())


def test_corrupt_style_code_files_are_one_line_errors(tmp_path, setup):
    lite = LiteModel(setup["onnx"])
    good = _torch_code(setup["model"], setup["style"])
    good.save(tmp_path / "good.safetensors")
    data = (tmp_path / "good.safetensors").read_bytes()
    for name, payload in {"short": data[:5], "truncated": data[:-7], "header": b"\xff" * 8 + data[8:]}.items():
        (tmp_path / f"{name}.safetensors").write_bytes(payload)
        with pytest.raises(DinstyleError):
            lite.load_code(tmp_path / f"{name}.safetensors")
    StyleCode({"x.weight": torch.zeros(1, 2)}).save(tmp_path / "other.safetensors")
    with pytest.raises(DinstyleError, match="different architecture"):
        lite.load_code(tmp_path / "other.safetensors")
    StyleCode({k: v.repeat(2, *[1] * (v.dim() - 1)) for k, v in good.tensors.items()}).save(tmp_path / "b.safetensors")
    with pytest.raises(DinstyleError, match="batch"):
        lite.load_code(tmp_path / "b.safetensors")


def test_cli_errors_and_batches(tmp_path, setup, capsys):
    onnx_dir, style, content = str(setup["onnx"]), str(setup["style"]), str(setup["content"])
    missing = str(tmp_path / "none")
    assert lite_main(["--model-dir", missing, "--style", style, content, "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "no such model directory" in err and len(err.strip().splitlines()) == 1
    assert lite_main(["--model-dir", onnx_dir, "--style", style, content, "--alpha", "2"]) == 2
    assert "alpha must be a number from 0 to 1" in capsys.readouterr().err
    out = tmp_path / "exists.png"
    out.write_bytes(b"keep")
    assert lite_main(["--model-dir", onnx_dir, "--style", style, content, "-o", str(out)]) == 1
    assert out.read_bytes() == b"keep" and "--overwrite" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    tiny = _image(tmp_path / "tiny.png", 7, 9, 3)  # smaller than the model's multiple: padded, not rejected
    rc = lite_main(["--model-dir", onnx_dir, "--style", style, content, str(bad), str(tiny), "-o", str(tmp_path / "d")])
    captured = capsys.readouterr()
    assert rc == 1 and "skipped" in captured.err and "bad.png" in captured.err
    assert _pixels(tmp_path / "d" / "content.png").shape == (45, 61, 3)
    assert _pixels(tmp_path / "d" / "tiny.png").shape == (7, 9, 3)
    assert not (tmp_path / "d" / "bad.png").exists()


def test_code_from_other_weights_warns(tmp_path, setup, capsys):
    code = _torch_code(setup["model"], setup["style"])
    code.meta.update(model="din-mobilenet-vgg:other.safetensors", weights="0123456789abcdef")
    code.save(tmp_path / "other.safetensors")
    LiteModel(setup["onnx"]).load_code(tmp_path / "other.safetensors")
    assert "other weights" in capsys.readouterr().err
