"""One alpha policy (issue 27): alpha blends towards the content's own code on every model; files and configs
that ask for the retired "features" or "code" are refused in one line, and the rewrite tool keeps alpha 1."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from dinstyle.errors import DinstyleError
from dinstyle.models import create_model, load_model, load_model_file, save_model
from dinstyle.models.legacy import RetiredAlphaMode
from dinstyle.models.registry import bundled_model_path
from conftest import TINY_FAST

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("upgrade_alpha", ROOT / "tools" / "upgrade_alpha.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _old_file(tmp_path, alpha, neutral=False):
    """A tiny din-fast file as written before the one policy: config ``alpha`` (and a neutral vector)."""
    torch.manual_seed(0)
    model = create_model("din-fast", **TINY_FAST).eval()
    save_model(model, tmp_path / "new.safetensors")
    with safe_open(str(tmp_path / "new.safetensors"), framework="pt") as f:
        tensors, md = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    if neutral:
        tensors["neutral_vector"] = torch.zeros(100)
    path = tmp_path / f"old-{alpha}.safetensors"
    save_file(tensors, str(path), metadata={**md, "config": json.dumps({**json.loads(md["config"]), "alpha": alpha})})
    return model, path


@pytest.mark.parametrize("alpha", ["features", "code", "bogus"])
def test_a_file_asking_for_a_retired_alpha_is_refused_in_one_line(tmp_path, alpha):
    _, path = _old_file(tmp_path, alpha)
    with pytest.raises(RetiredAlphaMode) as e:
        load_model_file(path)
    msg = str(e.value)
    assert isinstance(e.value, DinstyleError) and "\n" not in msg and msg.startswith(str(path))
    assert f"alpha {alpha!r} is retired" in msg and "tools/upgrade_alpha.py" in msg  # what to do


@pytest.mark.parametrize("alpha", ["features", "code"])
def test_a_config_asking_for_a_retired_alpha_is_refused(alpha):
    with pytest.raises(RetiredAlphaMode, match="retired"):
        create_model("din-fast", **TINY_FAST, alpha=alpha)


def test_content_the_one_policy_is_still_accepted_and_changes_nothing(tmp_path):
    model, path = _old_file(tmp_path, "content", neutral=True)  # every shipped file looks like this
    old = load_model_file(path)
    torch.manual_seed(0)
    said = create_model("din-fast", **TINY_FAST, alpha="content").eval()  # a training config may still say it
    x, s = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for m in (old, said):
            assert torch.equal(m.stylize(x, m.encode_style(s), alpha=0.5), model.stylize(x, model.encode_style(s), alpha=0.5))
    assert "alpha" not in old.describe()["config"]


def test_the_rewrite_tool_keeps_alpha_one(tmp_path):
    model, path = _old_file(tmp_path, "features", neutral=True)
    assert _tool().main([str(path), "-o", str(tmp_path / "up.safetensors")]) == 0
    up = load_model_file(tmp_path / "up.safetensors")
    assert "'features' dropped" in up.pretrained.notes["alpha_mode"]
    x, s = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(up.stylize(x, up.encode_style(s)), model.stylize(x, model.encode_style(s)))


def test_create_model_behaves_like_the_bundled_din_fast():
    """The config defaults no longer pick an alpha: a fresh din-fast holding the bundled weights is the
    bundled model, at alpha < 1 too."""
    bundled = load_model("din-fast")
    fresh = create_model("din-fast").eval()
    fresh.load_state_dict(bundled.state_dict())
    x, s = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        code = bundled.encode_style(s)
        assert torch.equal(fresh.stylize(x, code, alpha=0.5), bundled.stylize(x, code, alpha=0.5))
        assert not torch.allclose(bundled.stylize(x, code, alpha=0.5), bundled.stylize(x, code), atol=1e-3)
    assert bundled_model_path("din-fast") is not None
