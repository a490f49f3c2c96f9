"""Stylize with an exported model directory using onnxruntime + numpy only (no torch)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Union

import numpy as np

from ..defaults import REFERENCE_SIZE, check_alpha, check_stroke_size, dither_noise, scale_for, scaled_size
from ..errors import DinstyleError, first_line
from .codefile import check_finite, read_style_code
from .images import load_rgb, resize_bicubic, resize_long_side
from .manifest import graph_path, read_manifest

ImageLike = Union[str, os.PathLike, np.ndarray]
Code = dict[str, np.ndarray]


def session_options(threads: int | None):
    """onnxruntime session options: ``threads`` intra-op threads (None = onnxruntime's default), quiet logs.

    The one place they are made: this runtime's sessions and the Magenta baseline's (``eval.magenta``)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return opts


def _session(path: Path, threads: int | None, providers: list[str] | None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise DinstyleError("the runtime needs onnxruntime: pip install onnxruntime") from None

    if not path.is_file():
        raise DinstyleError(f"{path}: missing from the model directory")
    opts = session_options(threads)
    try:
        return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for corrupt graphs
        raise DinstyleError(f"{path}: onnxruntime cannot load it ({first_line(e)})") from None


def _run(session, feed: dict) -> list[np.ndarray]:
    try:
        return session.run(None, feed)
    except Exception as e:  # shape errors, out of memory: one line, not an onnxruntime traceback
        raise DinstyleError(f"onnxruntime failed: {first_line(e, 300)}") from None


def _nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


class LiteModel:
    """An exported model: ``encode_style(style)`` once, then ``stylize(content, code)`` per image.

    Images are HxWx3 float arrays in [0, 1] or file paths; codes are {StyleCode key: array}.
    ``content_file`` picks another content graph of the directory (e.g. ``content.int8.onnx``).
    """

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 providers: list[str] | None = None, content_file: str | None = None):
        self.dir = Path(model_dir)
        self.manifest = read_manifest(self.dir)
        self.threads, self.providers = threads, providers
        # graph files are resolved (and kept inside the directory) here, before any session opens
        self.style_file = graph_path(self.dir, self.manifest["style_encoder"]["file"])
        self.content_file = graph_path(self.dir, content_file or self.manifest["content"]["file"])
        self._style_session = self._content_session = None

    # ------------------------------------------------------------------ sessions (created on first use)
    @property
    def style_session(self):
        if self._style_session is None:
            self._style_session = _session(self.style_file, self.threads, self.providers)
        return self._style_session

    @property
    def content_session(self):
        if self._content_session is None:
            self._content_session = _session(self.content_file, self.threads, self.providers)
        return self._content_session

    # ------------------------------------------------------------------ raw graphs, (1, 3, H, W) arrays
    def encode_style_array(self, style: np.ndarray) -> Code:
        outs = _run(self.style_session, {"style": np.ascontiguousarray(style, dtype=np.float32)})
        return dict(zip(self.manifest["code_keys"], outs))

    def stylize_array(self, content: np.ndarray, code: Mapping[str, np.ndarray], alpha: float = 1.0) -> np.ndarray:
        feed = {"content": np.ascontiguousarray(content, dtype=np.float32), "alpha": np.array(alpha, np.float32)}
        feed.update({self.manifest["code_inputs"][k]["name"]: np.ascontiguousarray(code[k], dtype=np.float32)
                     for k in self.manifest["code_keys"]})
        return _run(self.content_session, feed)[0]

    # ------------------------------------------------------------------ images and files
    def encode_style(self, style: ImageLike, style_size: int | None = None) -> Code:
        """Style image -> code; the longer side is scaled to ``style_size`` (default: the manifest's, 0 = as is)."""
        image = load_rgb(style) if isinstance(style, (str, os.PathLike)) else np.asarray(style, np.float32)
        size = self.manifest["style_size"] if style_size is None else style_size
        if size:
            image = resize_long_side(image, size)
        floor = self.manifest.get("min_style_size", 64)  # the weight nets stride the 1/8 features twice more
        if min(image.shape[:2]) < floor:
            raise DinstyleError(f"style image is {image.shape[1]}x{image.shape[0]} after resizing; "
                                f"both sides must be at least {floor} px")
        return self.encode_style_array(_nchw(image))

    def load_code(self, path: str | os.PathLike) -> Code:
        """A style code file (``StyleCode.save``), checked against this model's code layout."""
        tensors, meta = read_style_code(path)
        expected = self.manifest["code_inputs"]
        if set(tensors) != set(expected):
            raise DinstyleError(f"{path}: style code from a different architecture "
                                f"({meta.get('model') or meta.get('arch', '?')}), not {self.manifest['model_id']}")
        for k, t in tensors.items():
            if list(t.shape[1:]) != expected[k]["shape"][1:] or t.shape[0] < 1:
                raise DinstyleError(f"{path}: {k} has shape {list(t.shape)}, this model needs {expected[k]['shape']}")
        if any(t.shape[0] != 1 for t in tensors.values()):
            raise DinstyleError(f"{path}: holds a batch of styles; save one style per file")
        mine, theirs = self.manifest.get("weights"), meta.get("weights")
        if (mine and theirs and mine != theirs) or (meta.get("model") and meta["model"] != self.manifest["model_id"]):
            print(f"dinstyle.lite: warning: {path} was encoded by other weights ({meta.get('model', '?')}) than "
                  f"this model ({self.manifest['model_id']}); results may be off", file=sys.stderr)
        return tensors

    def code_for(self, style: ImageLike, style_size: int | None = None) -> Code:
        """A style given as an image (path or array) or as a ``.safetensors`` style code file."""
        if isinstance(style, (str, os.PathLike)) and str(style).lower().endswith(".safetensors"):
            return self.load_code(style)
        label = str(style) if isinstance(style, (str, os.PathLike)) else "style image"
        return check_finite(self.encode_style(style, style_size), label)

    def stylize(self, content: ImageLike, code: Mapping[str, np.ndarray], alpha: float = 1.0,
                restore: bool = True, stroke_size: float = 1.0) -> np.ndarray:
        """Restyle one image of any size; HxWx3 float32 in [0, 1]. ``restore`` as dinstyle's: with alpha < 1,
        add back (1 - alpha) x (content - the graph's output at alpha 0), so alpha 0 is the content itself.
        ``stroke_size`` as dinstyle's: the graph runs on the photo resized by stroke size x (its size / the
        model's reference size), brought back with the fine band of the graph's pass at the photo's own size
        (``defaults.scale_for``, ``runtime/scale.py``)."""
        alpha = check_alpha(alpha)
        stroke_size = check_stroke_size(stroke_size)
        image = load_rgb(content) if isinstance(content, (str, os.PathLike)) else np.asarray(content, np.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise DinstyleError(f"content must be an HxWx3 image, got shape {image.shape}")
        if restore and alpha <= 0.0:
            return np.ascontiguousarray(image, dtype=np.float32)
        h, w = image.shape[:2]
        reference = self.manifest.get("reference_size", REFERENCE_SIZE)
        scale = scale_for(h, w, stroke_size, reference)
        detail = min(scale, scale_for(h, w, 1.0, reference))
        out = self._scaled(image, code, alpha, scale, detail)
        if restore and alpha < 1.0:
            y0 = np.clip(self._scaled(image, code, 0.0, scale, detail), 0.0, 1.0)
            out = np.clip(np.clip(out, 0.0, 1.0) + (1.0 - alpha) * (image - y0), 0.0, 1.0)
        if not np.isfinite(out).all():
            raise DinstyleError("the model produced NaN or inf: its weights or the style code hold extreme values")
        return np.ascontiguousarray(out, dtype=np.float32)

    def _scaled(self, image: np.ndarray, code: Mapping[str, np.ndarray], alpha: float, scale: float,
                detail_scale: float) -> np.ndarray:
        """One pass (HxWx3, unclamped) at a stroke scale: the graph on the resized photo, brought back to size
        with the fine band (finer than ``detail_scale``, that of stroke size 1) of the graph's own pass at the
        photo's size added back, as ``runtime.scale.run_scaled`` does."""
        if scale == 1.0:
            return self._pass(image, code, alpha)
        h, w = image.shape[:2]
        small = np.clip(resize_bicubic(image, *scaled_size(h, w, scale)), 0.0, 1.0)
        y = resize_bicubic(self._pass(small, code, alpha), h, w)
        d = min(scale, detail_scale)
        if d <= 1.0:
            return y
        native = self._pass(image, code, alpha)
        return y + native - resize_bicubic(resize_bicubic(native, *scaled_size(h, w, d)), h, w)

    def _pass(self, image: np.ndarray, code: Mapping[str, np.ndarray], alpha: float) -> np.ndarray:
        """The content graph on one HxWx3 image (edge-padded up to the graph's smallest size)."""
        h, w = image.shape[:2]
        # the fixed dither dinstyle's runner adds to every pass's input (defaults.DITHER: even texture on flat areas)
        image = np.clip(image + dither_noise(h, w).transpose(1, 2, 0), 0.0, 1.0)
        floor = self.manifest["min_size"]  # below it the graph's reflect pads run out of pixels: edge-pad
        if h < floor or w < floor:
            image = np.pad(image, ((0, max(0, floor - h)), (0, max(0, floor - w)), (0, 0)), mode="edge")
        return self.stylize_array(_nchw(image), code, alpha)[0, :, :h, :w].transpose(1, 2, 0)
