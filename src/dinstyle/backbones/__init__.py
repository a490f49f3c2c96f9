"""Frozen backbones by name: the values of ``--style-encoder`` and ``--loss-net``."""
from __future__ import annotations

from .base import Backbone

NAMES = ("vgg19", "efficientnet-lite0", "random-vgg19", "random-efficientnet-lite0")


def create_backbone(name: str, seed: int = 0, upto: str | None = None, path: str | None = None) -> Backbone:
    """Build a frozen backbone. ``name`` may also be ``vgg19:PATH`` for a torchvision/AdaIN VGG-19 file."""
    if name.startswith("vgg19:"):
        name, path = "vgg19", name[len("vgg19:"):]
    if name in ("vgg19", "random-vgg19"):
        from .vgg import pretrained_vgg19, random_vgg19

        upto = upto or "relu4_1"
        return pretrained_vgg19(upto, path) if name == "vgg19" else random_vgg19(seed, upto)
    if name in ("efficientnet-lite0", "random-efficientnet-lite0"):
        from .efficientnet_lite import EfficientNetLite0

        return EfficientNetLite0(pretrained=name == "efficientnet-lite0", seed=seed)
    raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(NAMES)} or vgg19:PATH")


__all__ = ["Backbone", "NAMES", "create_backbone"]
