import json
import warnings

import pytest
import torch

from dinstyle.models import create_model

TINY = dict(style_encoder="random-vgg19", widths=(8, 16, 32), res_blocks=1, din_groups=(4, 4, 8), style_hidden=16)
# din-fast (the bundled architecture) at test size.
TINY_FAST = dict(style_encoder="random-vgg19", widths=(8, 12, 16), out_width=8, res_blocks=1, din_groups=(4, 4, 4),
                 style_hidden=16, style_size=64)
# The same model as a `dinstyle train --config` table.
TINY_MODEL_TOML = "[model]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items())  # JSON values are TOML here


def tiny_model_file(path, seed=0, **cfg):
    """A tiny din-mobilenet-vgg saved to ``path``, its weight/bias nets pushed off identity so styles matter."""
    from dinstyle.models import save_model

    torch.manual_seed(seed)
    model = create_model("din-mobilenet-vgg", **{**TINY, **cfg})
    with torch.no_grad():  # untrained weight/bias nets are ~identity: every style would look alike
        for name, p in model.style_encoder.named_parameters():
            if "proj" in name:
                p.normal_(0, 0.05)
    save_model(model, path)
    return path


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny convolutions on a 2-core machine: torch's thread pool only fights itself (up to 10x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny_model():
    """A small, fast din-mobilenet-vgg with a random VGG style encoder."""
    torch.manual_seed(0)
    return create_model("din-mobilenet-vgg", **TINY)


@pytest.fixture(autouse=True)
def _quiet_untrained_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
        yield
