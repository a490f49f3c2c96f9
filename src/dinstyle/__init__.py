"""dinstyle: fast arbitrary image and video style transfer with Dynamic Instance Normalization."""
from .version import __version__


def __getattr__(name):  # lazy, so `python -m dinstyle.lite` never imports torch
    if name == "Stylizer":
        from .api import Stylizer

        return Stylizer
    raise AttributeError(name)


__all__ = ["Stylizer", "__version__"]
