"""The Python API: ``Stylizer.from_pretrained().stylize(content, style)``.

Images may be paths, PIL images, numpy arrays (H, W[, 3|4], uint8 or float in [0, 1]) or tensors
((B, )3|4, H, W float in [0, 1]); the result is the same kind (a path gives a PIL image). A fourth
(alpha) channel is passed through untouched. Styles may be any of those, ``builtin:NAME``, a saved
style code (``.safetensors``) or a :class:`StyleCode`.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from .defaults import DEFAULT_STYLE_SIZE, model_reference_size, model_style_size, scale_for
from .errors import DinstyleError, UsageError, first_line
from .io.images import DEFAULT_MAX_PIXELS
from .io.tensorfiles import WeightsError
from .models import DEFAULT_MODEL, StyleTransferNet, load_model, model_id, weights_fingerprint
from .models.stylecode import StyleCode, blend, file_sha256, require_finite
from .runtime import controls as controls_px
from .runtime.codecache import CodeCache
from .runtime.controls import auto_stroke_map, gray_map, region_masks, resize_long_side
from .runtime.devices import check_half, pick_device
from .runtime.engine import tune_allocator
from .runtime.request import RunRequest, StyleOptions
from .runtime.runner import run_model
from .runtime.sources import (CODE, CODE_FILE, IMAGE, ImageLike, StyleLike, StyleSource, check_resizable,
                              content_tensor, like_input, style_source)
from .version import __version__
from .video.pipeline import AUTO_GPU_BATCH, Frame, FrameStylizer, output_size, stream_frames, transcode
from .video.temporal import CUT_THRESHOLD, check_temporal

__all__ = ["Stylizer", "StyleOptions", "pick_device", "resize_long_side", "ImageLike", "StyleLike", "DEFAULT_STYLE_SIZE"]


def _options(options: StyleOptions | None, controls: dict) -> StyleOptions:
    """The one ``StyleOptions`` of a call: given whole, or built (and so checked) from keywords."""
    if options is not None and controls:
        raise UsageError(f"give options or keywords, not both ({', '.join(sorted(controls))})")
    if options is not None:
        return options
    try:
        return StyleOptions(**controls)
    except TypeError as e:
        raise UsageError(f"unknown option: {e}") from None


class Stylizer:
    """A loaded model on a device, with an in-memory cache of encoded styles (``codes``, the one bounded
    cache: the server uses it too).

    ``model`` and ``device`` are stable attributes; ``dtype`` is float16 with ``half`` (default on CUDA).
    """

    def __init__(self, model: StyleTransferNet, device: str | torch.device = "auto", half: bool | None = None):
        self.device = pick_device(device) if isinstance(device, str) else device
        check_half(self.device, half)
        self.half = self.device.type == "cuda" if half is None else bool(half)
        self.dtype = torch.float16 if self.half else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        if self.device.type == "cpu":
            tune_allocator()  # runtime/engine.py: a third of a CPU pass went to page faults without it
        self.codes = CodeCache()  # codes, loaded code files and style files' hashes, least recently used out
        self._fingerprint: str | None = None

    @property
    def style_size(self) -> int:
        """The style long side this model was trained with (stored in its config), else 512."""
        return model_style_size(self.model)

    @classmethod
    def from_pretrained(cls, name_or_file: str = DEFAULT_MODEL, device: str = "auto", half: bool | None = None,
                        seed: int = 0) -> "Stylizer":
        """A registered model name (bundled weights; untrained with a warning when none ship) or a model
        file path. ``seed`` fixes the initialisation of untrained parts, so runs are repeatable."""
        dev = pick_device(device)
        check_half(dev, half)  # before the model loads
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                try:
                    model = load_model(name_or_file)
                except (TypeError, ValueError, KeyError) as e:  # a model file whose config builds no model
                    if not Path(name_or_file).is_file():
                        raise
                    raise WeightsError(f"{name_or_file}: its config does not describe a model "
                                       f"({first_line(e, 160)})") from None
        return cls(model, dev, half)

    @property
    def model_id(self) -> str:
        return model_id(self.model)

    @property
    def fingerprint(self) -> str:
        """Hash of the trainable weights: ties saved style codes to the weights that made them."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.model)
        return self._fingerprint

    # ------------------------------------------------------------------ styles
    def check_code(self, code: StyleCode, label: str = "style code") -> StyleCode:
        """Every code the Stylizer hands out passes here (given, loaded or just encoded): refuse (one line)
        a code made for another architecture or configuration, of no or mixed batch size, or holding NaN or
        inf; warn on other weights."""
        desc = json.loads(json.dumps(self.model.describe()))  # tuples -> lists, as in the saved metadata
        arch, cfg = code.meta.get("arch"), json.loads(json.dumps(code.meta.get("config")))
        if arch not in (None, desc["arch"]):
            raise DinstyleError(f"{label}: style code is for a {arch} model, not {desc['arch']} "
                                f"(re-encode with 'dinstyle encode-style --model ...')")
        if isinstance(cfg, dict) and cfg != desc["config"]:
            diff = ", ".join(f"{k}={cfg.get(k)!r} vs {v!r}" for k, v in desc["config"].items() if cfg.get(k) != v)
            raise DinstyleError(f"{label}: style code is for another {arch} configuration ({diff[:160]})")
        for name, din in self.model.dins.items():
            w, b = code.tensors.get(f"{name}.weight"), code.tensors.get(f"{name}.bias")
            if w is None or b is None or tuple(w.shape[1:]) != din.weight_shape or b.shape[1:] != (din.channels,):
                raise DinstyleError(f"{label}: style code does not fit this model's DIN level {name!r}")
        batches = {int(v.shape[0]) for v in code.tensors.values()}
        if len(batches) != 1 or 0 in batches:
            raise DinstyleError(f"{label}: style code has batch sizes {sorted(batches)}; it needs one style per code")
        require_finite(code, label)
        if code.meta.get("weights") not in (None, self.fingerprint):
            warnings.warn(f"{label}: style code was encoded by other weights of this model "
                          f"({code.meta.get('model')}); results may be off", stacklevel=3)
        return code.to(self.device, self.dtype)

    @torch.inference_mode()
    def encode_style(self, style: StyleLike | StyleSource, style_size: int | None = 0) -> StyleCode:
        """One style -> its code: the model's ``encode_style`` with the resize, the checks and the cache around it
        (the API's twin of ``models.base.encode_style`` and ``lite.LiteModel.encode_style``).

        ``style``: an image, path, ``builtin:NAME``, saved code (.safetensors), StyleCode or classified
        ``StyleSource``. An image is resized to ``style_size`` on its long side (0 = the model's own
        ``style_size``, None keeps its size), encoded once, kept in ``codes`` and reused for any number of
        contents; saved codes and StyleCodes are checked and returned as they are. Several styles blended into
        one code: :meth:`blend_styles`."""
        src = style_source(style)
        if src.kind == CODE:
            return self.check_code(src.value)
        if src.kind == CODE_FILE:
            key = ("code-file", str(src.path.resolve()), src.path.stat().st_mtime_ns)
            return self.codes.get_or_make(key, lambda: self.check_code(StyleCode.load(src.path), src.label))
        style_size = self.style_size if style_size == 0 else style_size
        sha, x = self._style_sha(src)
        return self.codes.get_or_make(("code", sha, style_size), lambda: self._encode(src, x, sha, style_size))

    def _encode(self, src: StyleSource, x: torch.Tensor | None, sha: str, style_size: int | None) -> StyleCode:
        x = x if x is not None else content_tensor(src.value, src.max_pixels, name=src.label)[0]
        xs = resize_long_side(x, style_size) if style_size else x
        code = self.model.encode_style(xs.to(self.device, self.dtype))
        config = json.loads(json.dumps(self.model.describe()["config"]))  # as it will read back from a file
        code.meta.update(model=self.model_id, arch=self.model.arch, config=config, weights=self.fingerprint,
                         style=Path(src.label).name, style_sha256=sha, style_size=style_size or max(x.shape[-2:]),
                         version=__version__)
        return self.check_code(code, src.label)  # a model with extreme weights encodes NaN/inf

    def _style_sha(self, src: StyleSource) -> tuple[str, torch.Tensor | None]:
        """The cache key of a style image: the caller's hash when it gave one (the server's upload), else an
        in-memory image is decoded to hash it (returned too), while a file is hashed once per (path, mtime)
        and decoded only on a cache miss: a batch reuses one style."""
        if src.sha256 is not None:
            return src.sha256, None
        if src.kind == IMAGE:
            x = content_tensor(src.value)[0]
            return hashlib.sha256(x.numpy().tobytes()).hexdigest(), x
        stamp = ("file-sha", str(src.path.resolve()), src.path.stat().st_mtime_ns)
        return self.codes.get_or_make(stamp, lambda: file_sha256(src.path)), None

    def blend_styles(self, styles: StyleLike | Sequence[StyleLike], weights: Sequence[float] | None = None,
                     style_size: int | None = None) -> StyleCode:
        """Several styles + weights -> ONE code, blended in DIN-parameter space: the code ``stylize`` runs for a
        list of styles, video runs for every frame, and ``dinstyle encode-style`` saves.

        ``styles``: a list of styles (or one style), each as :meth:`encode_style` takes it; each is encoded there
        at ``style_size`` px on its long side (None: the model's ``style_size``; larger = smaller strokes on
        models whose encoder sees the size; a saved code refuses a size). A single style is its own code,
        ``weights`` unused; a StyleCode given alone (not in a list) is checked and returned as it is."""
        if isinstance(styles, StyleCode):
            return self.encode_style(styles)  # checked against the model
        styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
        if not styles:
            raise UsageError("at least one style is needed")
        sources = [style_source(s) for s in styles]
        check_resizable(sources, style_size is not None)
        if style_size is not None and not self.model.style_size_matters:
            warnings.warn(f"{self.model.arch} sees every style at one fixed size (--style-size: no effect on its "
                          "strokes; --stroke-size scales them)", stacklevel=3)
        codes = [self.encode_style(s, style_size or self.style_size) for s in sources]
        if len(codes) == 1:
            return codes[0]
        try:
            return blend(codes, weights)
        except ValueError as e:
            raise UsageError(f"style weights: {e}") from None

    def prepare_styles(self, styles: Sequence[StyleLike], options: StyleOptions | None = None, **controls) -> None:
        """Warm the cache ahead of a batch: encode every code ``stylize`` will ask for with these styles and
        options (nothing returned), so a batch finds an unusable style before its first image; any problem is
        a :class:`UsageError`."""
        opts = _options(options, controls)
        opts.check_styles(len(styles))
        try:
            self._codes_for(styles, opts)
        except UsageError:
            raise
        except DinstyleError as e:
            raise UsageError(str(e)) from None

    def _codes_for(self, styles: Sequence[StyleLike], opts: StyleOptions) -> list[StyleCode]:
        """The codes ``stylize`` runs for ``opts``: one blend, or one code per mask region."""
        if opts.mask is not None:
            return [self.blend_styles([s], None, opts.style_size) for s in styles]
        return [self.blend_styles(styles, opts.style_weights, opts.style_size)]

    def reference_size(self) -> int:
        """The long side (px) of the photos whose look stroke size 1 keeps at any size (``runtime.scale``)."""
        return model_reference_size(self.model)

    def request(self, x: torch.Tensor, styles: Sequence[StyleLike], opts: StyleOptions) -> RunRequest:
        """The ``RunRequest`` for content ``x`` ((B, 3, H, W)): the codes, the region masks and stroke map read
        at its size, and the stroke scale for its size."""
        opts.check_styles(len(styles))
        h, w = x.shape[-2:]
        label = lambda m, d: str(m) if isinstance(m, (str, os.PathLike)) else d  # noqa: E731
        masks = None
        if opts.mask is not None:
            masks = region_masks(opts.mask, len(styles), (h, w), label(opts.mask, "mask"), opts.max_pixels)
        scale_map = None
        if isinstance(opts.stroke_map, str) and opts.stroke_map == "auto":
            scale_map = auto_stroke_map(x)
        elif opts.stroke_map is not None:
            scale_map = gray_map(opts.stroke_map, (h, w), label(opts.stroke_map, "stroke map"), opts.max_pixels)
        return RunRequest(self._codes_for(styles, opts), alpha=opts.alpha, masks=masks, restore=opts.restore,
                          scale=scale_for(h, w, opts.stroke_size, self.reference_size()), scale_map=scale_map,
                          detail_scale=scale_for(h, w, 1.0, self.reference_size()), dither=opts.dither,
                          tile=opts.tile, max_pixels_untiled=opts.max_pixels_untiled, progress=opts.progress,
                          cancel=opts.cancel)

    # ------------------------------------------------------------------ stylize
    @torch.inference_mode()
    def stylize(self, image: ImageLike, style: StyleLike | Sequence[StyleLike], options: StyleOptions | None = None,
                **controls):
        """Restyle ``image``; returns the same kind of object (a path gives a PIL image).

        ``style``: one style (image, path, ``builtin:NAME``, ``.safetensors`` code, StyleCode) or a list.
        ``options`` (a :class:`StyleOptions`) or its fields as keywords: ``alpha`` (strength in [0, 1]; 0 returns
        the content itself with ``restore``), ``style_weights``, ``style_size``, ``preserve_color``, ``mask``,
        ``stroke_size`` (1 = the model's look at its reference size whatever the photo's size, 2 = strokes
        twice as large), ``stroke_map`` (an image, or "auto"), ``tile``, ``max_pixels_untiled``, ``max_pixels``,
        ``progress``, ``cancel``, ``restore``. Everything is checked once, in ``StyleOptions``.
        """
        opts = _options(options, controls)
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        opts.check_styles(len(styles))
        x, alpha_ch = content_tensor(image, opts.max_pixels)
        out = run_model(self.model, x, self.request(x, styles, opts)).clamp(0, 1)
        if opts.preserve_color:
            out = controls_px.preserve_color(out, x)
        return like_input(out, image, alpha_ch)

    # ------------------------------------------------------------------ video
    def stylize_frames(self, frames: Iterable[Frame], style: StyleLike | Sequence[StyleLike], *, temporal: float = 0.0,
                       batch_size: int | None = None, cut_threshold: float = CUT_THRESHOLD,
                       options: StyleOptions | None = None, **controls) -> Iterator[Frame]:
        """Stylize a stream of frames, in order, with ``style`` (one style or a list, encoded once by
        ``blend_styles``).

        Frames may be uint8/float (H, W, 3) arrays, PIL images or (3, H, W)/(1, 3, H, W) tensors in [0, 1];
        each output has the kind and size of its input. ``temporal`` in [0, 1] steadies the output (0 =
        independent frames) and resets at scene cuts; results do not depend on ``batch_size`` (default: 1 on
        CPU, where bigger batches measured no faster, 8 on GPUs). ``options`` / ``controls`` are ``stylize``'s
        (alpha, restore, style_size, style_weights, preserve_color, stroke_size, max_pixels_untiled); a mask or
        a stroke map would change from frame to frame, so video takes neither.
        """
        opts = _options(options, controls)
        if opts.mask is not None or opts.stroke_map is not None:
            raise UsageError("video takes no mask and no stroke map")
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else AUTO_GPU_BATCH
        if batch_size < 1:
            raise UsageError(f"batch size must be >= 1, got {batch_size}")
        code = self.blend_styles(style, opts.style_weights, opts.style_size)
        run = FrameStylizer(self.model, code, opts, temporal, cut_threshold, device=self.device, dtype=self.dtype)
        yield from stream_frames(run, frames, batch_size)

    def stylize_video(self, in_path: str | os.PathLike, out_path: str | os.PathLike,
                      style: StyleLike | Sequence[StyleLike], *, temporal: float = 0.5, size: int | None = None,
                      max_size: int | None = None, start: float = 0.0, duration: float | None = None,
                      overwrite: bool = False, progress: bool = True, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                      inputs: Sequence = (), **controls) -> dict:
        """Restyle the video ``in_path`` into ``out_path`` (format from its extension), style encoded once,
        audio kept, written atomically.

        Keeps the timing (frame rate, variable too) and the audio; ``size``/``max_size`` resize the long side;
        ``start``/``duration`` (seconds) cut a segment; ``temporal`` steadies the frames (0 = independent).
        ``controls`` are those of ``stylize_frames`` (batch_size, cut_threshold, and ``options`` or its fields). Frames over ``max_pixels`` are refused;
        the output may be no input: the video, nor the style files, nor the model (``inputs``).
        Returns a summary dict (frames, size, fps, audio, timing).
        """
        output_size(16, 16, size, max_size)  # usage errors before any work
        stream = {k: controls.pop(k) for k in ("batch_size", "cut_threshold") if k in controls}
        opts = _options(controls.pop("options", None), controls)
        check_temporal(temporal)
        if (stream.get("batch_size") or 1) < 1:
            raise UsageError(f"batch size must be >= 1, got {stream['batch_size']}")
        styles = style if isinstance(style, (list, tuple)) else [style]
        style_files = [src.path for src in map(style_source, styles) if src.path is not None]

        def begin():
            code = self.blend_styles(style, opts.style_weights, opts.style_size)
            return lambda frames: self.stylize_frames(frames, code, temporal=temporal, options=opts, **stream)

        summary = {"model": self.model_id, "alpha": opts.alpha, "temporal": temporal}
        return transcode(in_path, out_path, begin, size=size, max_size=max_size, start=start, duration=duration,
                         overwrite=overwrite, progress=progress, max_pixels=max_pixels,
                         inputs=[*inputs, *style_files], summary=summary)
