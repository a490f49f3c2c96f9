"""The contract every frozen feature backbone (style encoder / loss network) follows."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


class Backbone(nn.Module):
    """A frozen image network with named feature taps.

    Inputs are RGB images in [0, 1], shape (B, 3, H, W); each backbone applies its own
    preprocessing (Caffe BGR/mean for the original VGG-19, ImageNet mean/std for others),
    because a preprocessing mismatch is the classic cause of grey or noisy results.

    ``style_taps`` lists four taps from shallow to deep, at strides 1-2, 2-4, 4-8 and 8-16
    (VGG-19: relu1_1 ... relu4_1). DIN levels and the losses refer to taps by index in this
    list, so any backbone can serve as style encoder or loss network.
    """

    name: str = "backbone"
    style_taps: tuple[str, ...] = ()
    tap_channels: dict[str, int] = {}

    def freeze(self) -> "Backbone":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "Backbone":
        # Frozen: BatchNorm statistics never update, whatever the parent module does.
        return super().train(False)

    def forward(self, x: torch.Tensor, taps: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Return {tap: feature} for ``taps`` (default: ``style_taps``), stopping at the deepest one."""
        raise NotImplementedError
