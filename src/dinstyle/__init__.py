"""dinstyle: fast arbitrary image and video style transfer with Dynamic Instance Normalization."""
from .version import __version__


def __getattr__(name):  # lazy, so `python -m dinstyle.lite` never imports torch
    if name in ("Stylizer", "StyleOptions"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)


__all__ = ["Stylizer", "StyleOptions", "__version__"]
