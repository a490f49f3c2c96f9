import warnings

import pytest
import torch

from dinstyle.models import create_model

TINY = dict(style_encoder="random-vgg19", widths=(8, 16, 32), res_blocks=1, din_groups=(4, 4, 8), style_hidden=16)


@pytest.fixture
def tiny_model():
    """A small, fast din-mobilenet with a random VGG style encoder."""
    torch.manual_seed(0)
    return create_model("din-mobilenet", **TINY)


@pytest.fixture(autouse=True)
def _quiet_untrained_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
        yield
