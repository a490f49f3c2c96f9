"""Export a model as two ONNX graphs plus a manifest, for the torch-free runtime (``dinstyle.lite``).

* ``style_encoder.onnx``: style (1, 3, H, W) RGB [0, 1] -> one output per StyleCode tensor.
* ``content.onnx``: content (1, 3, H, W) RGB [0, 1], alpha (scalar) and the code tensors ->
  stylized (1, 3, H, W), clamped to [0, 1]. Any H, W: the graph pads to the model's multiple and crops.
  A din-magenta whose alpha blends towards the content's own code carries the style predictor in this graph
  too; it reads that code from a plain bilinear resize (opset 17 has no antialiased one), so at alpha < 1 a
  large image's output differs a little from PyTorch's (measured in PyTorch, the code of a 720x360 photo
  read both ways: alpha 0.5 outputs apart by 0.005 on average).
* ``manifest.json``: what the runtime needs to drive them (see ``dinstyle.lite.manifest``).

Uses the TorchScript exporter (``dynamo=False``): it needs no ``onnxscript`` and handles the traced
size arithmetic (padding to a multiple, cropping back) as dynamic shape ops.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..defaults import model_reference_size, model_style_size
from ..errors import DinstyleError, UsageError
from ..io.outputs import plan_outputs
from ..layers.deform import DeformableDIN
from ..layers.din import DIN
from ..lite.manifest import MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, code_input_name, write_manifest
from ..models import StyleTransferNet, model_id, weights_fingerprint
from ..models.stylecode import StyleCode
from ..version import __version__
from .quantize import INT8_FILE

DEFAULT_OPSET = 17
# Trace with odd sizes so padding to a multiple is recorded (a multiple-of-8 example would skip it).
TRACE_CONTENT_HW = (67, 93)
TRACE_STYLE_HW = (97, 75)
CHECK_HW = ((45, 61), (64, 64))  # verification sizes, different from the traced ones
PARITY_TOLERANCE = 1e-3
GRAPH_FILES = ("style_encoder.onnx", "content.onnx")


class StyleEncoderGraph(nn.Module):
    """style image -> code tensors in ``keys`` order."""

    def __init__(self, model: StyleTransferNet, keys: list[str]):
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, style: torch.Tensor) -> tuple[torch.Tensor, ...]:
        code = self.model.encode_style(style)
        return tuple(code[k] for k in self.keys)


def check_exportable(model: StyleTransferNet) -> None:
    """Plain and deformable DIN trace as they are (the batch-1 dynamic conv is a grouped conv; deformable
    DIN's grid_sample is ONNX GridSample, opset >= 16); other DIN layers are refused in one line."""
    unsupported = sorted({type(d).__name__ for d in model.dins.values() if type(d) not in (DIN, DeformableDIN)})
    if unsupported:
        raise DinstyleError(f"ONNX export does not support {', '.join(unsupported)} layers yet")


class ContentGraph(nn.Module):
    """(content, alpha, *code tensors in ``keys`` order) -> stylized image clamped to [0, 1]."""

    def __init__(self, model: StyleTransferNet, keys: list[str]):
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, content: torch.Tensor, alpha: torch.Tensor, *code: torch.Tensor) -> torch.Tensor:
        # alpha stays a graph input: a tensor alpha blends every DIN level in the graph
        y = self.model.stylize(content, StyleCode(dict(zip(self.keys, code))), alpha=alpha)
        return y.clamp(0.0, 1.0)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic_axes: dict, opset: int) -> None:
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about baked-in Python branches are expected
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, **kwargs)


def _max_diff(a: np.ndarray, b: torch.Tensor) -> float:
    return float(np.abs(a - b.numpy()).max())


def verify(model: StyleTransferNet, out_dir: Path, manifest: dict, seed: int = 0) -> float:
    """Run both graphs with onnxruntime at sizes other than the traced ones; the largest
    absolute difference from PyTorch over codes and stylized images (raises above 1e-3)."""
    from ..lite.runtime import LiteModel

    lite = LiteModel(out_dir)
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for (h, w), alpha in zip(CHECK_HW, (1.0, 0.5)):
        style, content = torch.rand(1, 3, w, h, generator=g), torch.rand(1, 3, h, w, generator=g)
        with torch.no_grad():
            code = model.encode_style(style)
            ref = model.stylize(content, code, alpha=alpha).clamp(0, 1)
        lite_code = lite.encode_style_array(style.numpy())
        worst = max(worst, *(_max_diff(lite_code[k], code[k]) for k in manifest["code_keys"]))
        out = lite.stylize_array(content.numpy(), {k: code[k].numpy() for k in manifest["code_keys"]}, alpha)
        worst = max(worst, _max_diff(out, ref))
    if worst > PARITY_TOLERANCE:
        raise DinstyleError(f"exported graphs differ from PyTorch by {worst:.2e} (> {PARITY_TOLERANCE}); "
                            "please report this model configuration")
    return worst


def check_outputs(out_dir: Path, overwrite: bool, inputs: Sequence = ()) -> None:
    """The files an export writes (or deletes: a stale int8 graph) follow dinstyle's output rule
    (``dinstyle.io.outputs``): never an input (``inputs``: the model file, calibration images), never an
    existing file without ``overwrite``. Replacing an input is a usage error; an existing export is not."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a directory")
    written = (*GRAPH_FILES, MANIFEST_FILE, INT8_FILE)
    reasons = plan_outputs([(f"-o {out_dir}", None, out_dir / f) for f in written], inputs, overwrite)
    refused = [r for r in reasons if r is not None]
    first = next((r for r in refused if r.kind != "exists"), None)  # an input or a folder beats "exists"
    if first is not None:
        raise UsageError(str(first))
    if refused:
        raise DinstyleError(f"{out_dir}: already holds an exported model (use --overwrite to replace it)")


def export_onnx(model: StyleTransferNet, out_dir: str | Path, opset: int = DEFAULT_OPSET,
                style_size: int | None = None, check: bool = True, overwrite: bool = False,
                inputs: Sequence = ()) -> dict:
    """Write ``style_encoder.onnx``, ``content.onnx`` and ``manifest.json`` to ``out_dir``; return the manifest.

    ``style_size``: the runtime's default style long side (default: the model's own, as the CLI uses).
    ``inputs``: files of this run that no output may replace (``check_outputs``); the model's own file
    always counts. Built in a temporary sibling directory and verified against PyTorch (``check``) before
    anything is moved into ``out_dir``, so a failed export never leaves a half-written or mismatched model."""
    out_dir = Path(out_dir)
    own = model.pretrained.file
    check_outputs(out_dir, overwrite, [*inputs, *([own] if own and Path(own).is_file() else [])])
    style_size = model_style_size(model) if style_size is None else style_size
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as tmp:
        manifest = _export_into(model, Path(tmp), opset, style_size)
        if check:
            manifest["parity_max_abs_diff"] = verify(model, Path(tmp), manifest)
            write_manifest(Path(tmp), manifest)
        out_dir.mkdir(exist_ok=True)
        (out_dir / INT8_FILE).unlink(missing_ok=True)  # a quantized graph of the previous export is stale
        for name in (*GRAPH_FILES, MANIFEST_FILE):  # manifest last: it is what makes the directory valid
            os.replace(Path(tmp) / name, out_dir / name)
    return manifest


def _export_into(model: StyleTransferNet, out_dir: Path, opset: int, style_size: int) -> dict:
    model = model.float().cpu().eval()
    style = torch.rand(1, 3, *TRACE_STYLE_HW, generator=torch.Generator().manual_seed(1))
    content = torch.rand(1, 3, *TRACE_CONTENT_HW, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        code = model.encode_style(style)
    keys = sorted(code.tensors)
    names = [code_input_name(k) for k in keys]
    if len(set(names)) != len(names) or {"content", "alpha", "style", "stylized"} & set(names):
        raise DinstyleError(f"style code keys {keys} do not map to distinct ONNX names")
    hw = {2: "height", 3: "width"}
    check_exportable(model)
    _export(StyleEncoderGraph(model, keys), (style,), out_dir / GRAPH_FILES[0], ["style"], names,
            {"style": hw}, opset)
    _export(ContentGraph(model, keys), (content, torch.tensor(0.5), *[code[k] for k in keys]),
            out_dir / GRAPH_FILES[1], ["content", "alpha", *names], ["stylized"],
            {"content": hw, "stylized": hw}, opset)

    manifest = {
        "format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION,
        "model_id": model_id(model), "arch": model.arch, "config": dataclasses.asdict(model.config),
        "trained": model.pretrained.trained, "dinstyle_version": __version__,
        "torch_version": torch.__version__, "opset": opset,
        "normalisation": {"layout": "NCHW", "color": "RGB", "range": [0.0, 1.0], "dtype": "float32", "batch": 1},
        "style_size": style_size, "reference_size": model_reference_size(model), "pad_multiple": model.pad_multiple, "min_size": 2 * model.pad_multiple,
        "min_style_size": 8 * model.pad_multiple,
        "code_keys": keys,
        "code_inputs": {k: {"name": n, "shape": list(code[k].shape)} for k, n in zip(keys, names)},
        "style_encoder": {"file": GRAPH_FILES[0], "inputs": ["style"], "outputs": names},
        "content": {"file": GRAPH_FILES[1], "inputs": ["content", "alpha", *names], "outputs": ["stylized"]},
    }
    fingerprint = weights_fingerprint(model)
    if fingerprint:
        manifest["weights"] = fingerprint
    write_manifest(out_dir, manifest)
    return manifest
