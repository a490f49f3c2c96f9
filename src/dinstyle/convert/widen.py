"""din-magenta with k x k grouped (optionally deformable) DIN kernels that computes exactly what a 1x1
depthwise one computes: the start of a fine-tune that lets the new taps learn (``tools/widen_din_magenta.py``)."""
from __future__ import annotations

import dataclasses

import torch

from ..layers.din import identity_kernel
from ..models.din_magenta import DINMagenta
from ..models.magenta_predictor import VECTOR_SIZE


def widen(model: DINMagenta, kernel: int = 3, group_size: int = 4, deformable: bool = False) -> DINMagenta:
    """``model`` with k x k grouped (optionally deformable) DIN kernels, computing exactly what it computes:
    each level's old 1x1 depthwise map becomes the centre tap of the channel's own input in its group, every
    other tap starts at zero (and deformable offsets start at zero), so fine-tuning starts from the same network."""
    if model.config.din_kernel != 1 or model.config.din_group_size != 1:
        raise ValueError("widen takes a model with 1x1 depthwise DIN kernels")
    cfg = dataclasses.replace(model.config, din_kernel=kernel, din_group_size=group_size, deformable=deformable)
    wide = DINMagenta(cfg)
    state = {k: v for k, v in model.state_dict().items() if ".weight_nets." not in k}
    missing, _ = wide.load_state_dict(state, strict=False)
    with torch.no_grad():
        for name, net in wide.style_encoder.weight_nets.items():
            c, cg, k = wide.style_encoder.shapes[name]
            old = model.style_encoder.weight_nets[name]
            net.weight.copy_(_centre_taps(old.weight, cg, k).reshape(-1, VECTOR_SIZE))
            net.bias.copy_(_centre_taps(old.bias, cg, k).reshape(-1))
    unexpected = [m for m in missing if ".weight_nets." not in m and ".offset_" not in m]
    if unexpected:
        raise ValueError(f"widen: weights left unset: {unexpected[:4]}")
    wide.pretrained = model.pretrained
    return wide.eval()


def _centre_taps(per_channel: torch.Tensor, cg: int, k: int) -> torch.Tensor:
    """(C, ...) 1x1 depthwise values -> (C, cg, k, k, ...): each value on ``identity_kernel``'s tap (the centre
    of the channel's own input within its group), zero elsewhere."""
    c, rest = per_channel.shape[0], per_channel.shape[1:]
    eye = identity_kernel(c, c // cg, k).to(per_channel)
    return eye.view(c, cg, k, k, *[1] * len(rest)) * per_channel.view(c, 1, 1, 1, *rest)
