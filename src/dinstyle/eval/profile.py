"""Parameters and multiply-accumulates of each architecture, split into the style path (paid once per
style) and the content path (paid per image or frame).

Convolutions, including the batch-folded dynamic ones, are counted by ``torch.utils.flop_counter``
(2 flops = 1 MAC). Elementwise work it skips (instance norm, deformable sampling) is added by modules
that define ``uncounted_macs(input)``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..layers.reference import reference_forms
from ..models import ARCHS, StyleTransferNet, create_model


class _Usage:
    """Forward hooks that record which parameters a pass touched and the MACs the counter misses."""

    def __init__(self, model: nn.Module):
        self.params: dict[int, int] = {}
        self.extra_macs = 0
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()]

    def _hook(self, module, inputs, output):
        for p in module.parameters(recurse=False):
            self.params[id(p)] = p.numel()
        if hasattr(module, "uncounted_macs") and inputs and torch.is_tensor(inputs[0]):
            self.extra_macs += int(module.uncounted_macs(inputs[0]))

    def close(self):
        for h in self.handles:
            h.remove()


def _measure(model: nn.Module, fn) -> tuple[int, float, object]:
    usage = _Usage(model)
    try:  # the model's own MACs, not its faster rewrites' (layers.reference)
        with FlopCounterMode(display=False) as counter, torch.no_grad(), reference_forms():
            out = fn()
    finally:
        usage.close()
    return sum(usage.params.values()), counter.get_total_flops() / 2 + usage.extra_macs, out


def profile_model(model: StyleTransferNet, sizes=(256, 512, 1024)) -> dict:
    """{"params": {"style", "content"}, "gmacs": {"style": {size: g}, "content": {size: g}}}."""
    model.eval()
    out = {"params": {}, "gmacs": {"style": {}, "content": {}}}
    for s in sizes:
        image = torch.rand(1, 3, s, s)
        p_style, m_style, code = _measure(model, lambda: model.encode_style(image))
        p_content, m_content, _ = _measure(model, lambda: model.stylize(image, code))
        out["params"] = {"style": p_style, "content": p_content}
        out["gmacs"]["style"][str(s)] = round(m_style / 1e9, 6)
        out["gmacs"]["content"][str(s)] = round(m_content / 1e9, 6)
    return out


def profile_all(archs=None, sizes=(256, 512, 1024), models: dict | None = None) -> dict:
    """Profile every registered architecture (or the given ``models``: name -> model)."""
    # MACs do not depend on the weights: a random backbone spares loading the pretrained file.
    models = models or {a: create_model(a, style_encoder="random-vgg19") for a in (archs or ARCHS)}
    return {name: profile_model(m, sizes) for name, m in models.items()}


def markdown_table(result: dict, size: int = 512) -> str:
    s = str(size)
    ref = result.get("adain", {}).get("gmacs", {}).get("content", {}).get(s)
    rows = ["| model | style params | content params | style GMACs | content GMACs | content vs adain |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, r in result.items():
        c = r["gmacs"]["content"][s]
        ratio = f"{ref / c:.1f}x less" if ref and name != "adain" else ""
        rows.append(f"| {name} | {r['params']['style'] / 1e6:.2f} M | {r['params']['content'] / 1e6:.2f} M | "
                    f"{r['gmacs']['style'][s]:.2f} | {c:.2f} | {ratio} |")
    return "\n".join(rows) + f"\n\n(one {size}x{size} image; GMACs = 1e9 multiply-accumulates)"
