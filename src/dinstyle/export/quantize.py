"""Optional int8 version of an exported content graph (``content.int8.onnx``), via onnxruntime.quantization.

* ``static`` (default): QDQ int8 with per-channel weights, activations calibrated on content images
  and style codes (the given images, else synthetic smooth noise). Only the fixed convolutions are
  quantized: the DIN convs take their kernel from the style code at run time (not an initializer),
  and instance norm stays in float.
* ``dynamic``: int8 weights, activations quantized on the fly (ConvInteger); no calibration.

Quality and speed differ by model and CPU: measure with ``benchmarks/quantization.py`` before shipping it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import DinstyleError
from ..lite.images import load_rgb, resize_long_side
from ..lite.manifest import graph_path, read_manifest, write_manifest
from ..lite.runtime import LiteModel

INT8_FILE = "content.int8.onnx"
MODES = ("static", "dynamic")


def _dynamic_conv_nodes(model) -> list[str]:
    """Conv nodes whose weight is computed in the graph (the DIN convs): they cannot be quantized offline."""
    initializers = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] not in initializers]


def synthetic_images(n: int, size: int = 128, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour fields with edges (nearest-upsampled noise): a calibration stand-in for photos."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cells = 4 * (1 + i % 4)
        small = rng.random((cells, cells, 3)).astype(np.float32)
        reps = -(-size // cells)
        out.append(np.kron(small, np.ones((reps, reps, 1), np.float32))[:size, :size])
    return out


def _calibration_feeds(lite: LiteModel, contents: list[np.ndarray], styles: list[np.ndarray]) -> list[dict]:
    names = {k: lite.manifest["code_inputs"][k]["name"] for k in lite.manifest["code_keys"]}
    codes = [lite.encode_style(s, style_size=256) for s in styles]
    feeds = []
    for i, content in enumerate(contents):
        code = codes[i % len(codes)]
        feeds.append({"content": np.ascontiguousarray(content.transpose(2, 0, 1)[None]),
                      "alpha": np.array(1.0, np.float32), **{names[k]: code[k] for k in names}})
    return feeds


def quantize_content(model_dir: str | os.PathLike, mode: str = "static",
                     calibration: Iterable[str | os.PathLike] = (), size: int = 256, samples: int = 8) -> Path:
    """Write ``model_dir/content.int8.onnx`` and record it in the manifest; returns its path.

    ``calibration``: content image files for static mode (default: ``samples`` synthetic images),
    shown at ``size`` px on the longer side."""
    if mode not in MODES:
        raise DinstyleError(f"unknown quantization mode {mode!r}; choose from {', '.join(MODES)}")
    try:
        import onnx
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:
        raise DinstyleError(f"int8 quantization needs onnx and onnxruntime ({e}): "
                            "pip install onnx onnxruntime") from None
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    src, dst = graph_path(model_dir, manifest["content"]["file"]), model_dir / INT8_FILE
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".quant.") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / INT8_FILE
        # ONNX shape inference + graph fusions the quantizer relies on (the symbolic pass only adds noise here)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        exclude = _dynamic_conv_nodes(onnx.load(str(pre)))
        if mode == "dynamic":
            quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                             nodes_to_exclude=exclude)
            info = {"mode": "dynamic"}
        else:
            paths = list(calibration)
            contents = [resize_long_side(load_rgb(p), size) for p in paths] or synthetic_images(samples, size)
            styles = synthetic_images(2, 256, seed=1)
            feeds = iter(_calibration_feeds(LiteModel(model_dir), contents, styles))

            class Reader(CalibrationDataReader):
                def get_next(self):
                    return next(feeds, None)

            quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"], nodes_to_exclude=exclude)
            info = {"mode": "static", "calibration_images": len(paths) or f"{len(contents)} synthetic"}
        os.replace(out, dst)
    manifest["int8"] = {"file": INT8_FILE, **info}
    write_manifest(model_dir, manifest)
    return dst
