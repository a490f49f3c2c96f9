"""The Python API: ``Stylizer.from_pretrained().stylize(content, style)``.

Images may be paths, PIL images, numpy arrays (H, W[, 3|4], uint8 or float in [0, 1]) or tensors
((B, )3|4, H, W float in [0, 1]); the result is the same kind (a path gives a PIL image). A fourth
(alpha) channel is passed through untouched. Styles may be any of those, ``builtin:NAME``, a saved
style code (``.safetensors``) or a :class:`StyleCode`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch

from .defaults import DEFAULT_STYLE_SIZE
from .errors import DinstyleError, UsageError
from .io.images import DEFAULT_MAX_PIXELS
from .io.tensorfiles import WeightsError
from .models import DEFAULT_MODEL, StyleTransferNet, load_model, model_id, weights_fingerprint
from .models.stylecode import StyleCode, blend, file_sha256, require_finite
from .runtime import controls
from .runtime.controls import LARGE, SMALL, check_stroke_size, gray_map, region_masks, resize_long_side, stroke_multiplier
from .runtime.devices import check_half, pick_device
from .runtime.runner import DEFAULT_MAX_PIXELS_UNTILED, run_model
from .runtime.sources import (CODE, CODE_FILE, IMAGE, ImageLike, StyleLike, StyleSource, check_resizable,
                              content_tensor, like_input, style_source)
from .version import __version__
from .video.pipeline import AUTO_GPU_BATCH, Frame, FrameStylizer, output_size, stream_frames, transcode
from .video.temporal import CUT_THRESHOLD

__all__ = ["Stylizer", "pick_device", "resize_long_side", "ImageLike", "StyleLike", "DEFAULT_STYLE_SIZE"]


class Stylizer:
    """A loaded model on a device, with an in-memory cache of encoded styles.

    ``model`` and ``device`` are stable attributes; ``dtype`` is float16 with ``half`` (default on CUDA).
    """

    def __init__(self, model: StyleTransferNet, device: str | torch.device = "auto", half: bool | None = None):
        self.device = pick_device(device) if isinstance(device, str) else device
        check_half(self.device, half)
        self.half = self.device.type == "cuda" if half is None else bool(half)
        self.dtype = torch.float16 if self.half else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self._codes: dict[tuple, StyleCode] = {}
        self._file_sha: dict[tuple[str, int], str] = {}  # (path, mtime) -> sha256 of the style file
        self._fingerprint: str | None = None

    @property
    def style_size(self) -> int:
        """The style long side this model was trained with (stored in its config), else 512."""
        return int(getattr(self.model.config, "style_size", DEFAULT_STYLE_SIZE))

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
                    msg = (str(e).splitlines() or [type(e).__name__])[0][:160]
                    raise WeightsError(f"{name_or_file}: its config does not describe a model ({msg})") from None
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
        """Encode a style once (resized to ``style_size`` on its long side; 0 = the model's own
        ``style_size``, None keeps its size) and reuse the code for any number of contents. Saved codes
        and StyleCodes are checked and returned as is."""
        src = style_source(style)
        if src.kind == CODE:
            return self.check_code(src.value)
        if src.kind == CODE_FILE:
            key = ("file", str(src.path.resolve()), src.path.stat().st_mtime_ns)
            if key not in self._codes:
                self._codes[key] = self.check_code(StyleCode.load(src.path), src.label)
            return self._codes[key]
        style_size = self.style_size if style_size == 0 else style_size
        sha, x = self._style_sha(src)
        key = (sha, style_size)
        if key not in self._codes:
            x = x if x is not None else content_tensor(src.value)[0]
            xs = resize_long_side(x, style_size) if style_size else x
            code = self.model.encode_style(xs.to(self.device, self.dtype))
            config = json.loads(json.dumps(self.model.describe()["config"]))  # as it will read back from a file
            code.meta.update(model=self.model_id, arch=self.model.arch, config=config, weights=self.fingerprint,
                             style=Path(src.label).name, style_sha256=sha, style_size=style_size or max(x.shape[-2:]),
                             version=__version__)
            code = self.check_code(code, src.label)  # a model with extreme weights encodes NaN/inf
            if len(self._codes) >= 64:
                self._codes.pop(next(iter(self._codes)))
            self._codes[key] = code
        return self._codes[key]

    def _style_sha(self, src: StyleSource) -> tuple[str, torch.Tensor | None]:
        """The cache key of a style image; an in-memory image is decoded to hash it (returned too), while a
        file is hashed once per (path, mtime) and decoded only on a cache miss: a batch reuses one style."""
        if src.kind == IMAGE:
            x = content_tensor(src.value)[0]
            return hashlib.sha256(x.numpy().tobytes()).hexdigest(), x
        stamp = (str(src.path.resolve()), src.path.stat().st_mtime_ns)
        if stamp not in self._file_sha:
            self._file_sha[stamp] = file_sha256(src.path)
        return self._file_sha[stamp], None

    def blend_styles(self, styles: Sequence[StyleLike], weights: Sequence[float] | None = None,
                     size: int | None = None, factor: float = 1.0) -> StyleCode:
        """Encode ``styles`` (each at ``size`` / ``factor`` px, size default ``self.style_size``; a larger stroke factor
        means larger strokes) and blend them with ``weights`` in DIN-parameter space."""
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise UsageError(f"stroke factor must be a positive number, got {factor}")
        sources = [style_source(s) for s in styles]
        check_resizable(sources, size is not None or factor != 1.0)
        if not self.model.style_size_matters:  # a deformable model's strokes still follow the stroke factor
            ignored = (["--style-size"] if size is not None else []) + \
                (["--stroke-size", "--stroke-map"] if factor != 1.0 and not self.model.stroke_control else [])
            if ignored:
                warnings.warn(f"{self.model.arch} sees every style at one fixed size ({', '.join(ignored)}: no "
                              "effect on its strokes)", stacklevel=3)
        codes = [self.encode_style(s, round((size or self.style_size) / factor)) for s in sources]
        if len(codes) == 1:
            return codes[0]
        try:
            return blend(codes, weights)
        except ValueError as e:
            raise UsageError(f"--style-weights: {e}") from None

    def prepare_styles(self, styles: Sequence[StyleLike], style_weights: Sequence[float] | None = None, *,
                       style_size: int | None = None, stroke_size: float = 1.0, stroke_map: bool = False,
                       mask: bool = False) -> None:
        """Encode (and cache) every code ``stylize`` will ask for with these options, so a batch finds an
        unusable style before its first image; any problem is a :class:`UsageError`."""
        try:
            self._codes_for(styles, style_weights, style_size, stroke_size, by_region=mask, with_map=stroke_map)
        except UsageError:
            raise
        except DinstyleError as e:
            raise UsageError(str(e)) from None

    def _codes_for(self, styles, weights, style_size, stroke_size, by_region: bool, with_map: bool
                   ) -> list[list[StyleCode]]:
        """The codes ``stylize`` runs: one blend (or one per mask region), each at one stroke factor (or at
        the small and the large one a stroke map mixes)."""
        units = [[s] for s in styles] if by_region else [list(styles)]
        factors = (stroke_size * SMALL, stroke_size * LARGE) if with_map else (stroke_size,)
        return [[self.blend_styles(u, None if by_region else weights, style_size, f) for f in factors]
                for u in units]

    # ------------------------------------------------------------------ stylize
    @torch.inference_mode()
    def stylize(self, image: ImageLike, style: StyleLike | Sequence[StyleLike], alpha: float = 1.0, *,
                style_weights: Sequence[float] | None = None, style_size: int | None = None,
                preserve_color: bool = False, mask: ImageLike | None = None, stroke_size: float = 1.0,
                stroke_map: ImageLike | None = None, tile: int | None = None,
                max_pixels_untiled: int = DEFAULT_MAX_PIXELS_UNTILED, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                progress: Callable[[int, int], None] | None = None, restore: bool = True):
        """Restyle ``image``; returns the same kind of object (a path gives a PIL image).

        Args:
            style: one style (image, path, ``builtin:NAME``, ``.safetensors`` code, StyleCode) or a list.
            alpha: style strength in [0, 1]; 0 returns the content itself (see ``restore``).
            style_weights: with several styles, their blend weights (in DIN-parameter space).
            style_size: long side the style image is resized to before encoding (default: the model's own);
                larger = smaller strokes.
            preserve_color: keep the content's colours (luminance-only transfer, see ``controls``).
            mask: label image selecting one style per region (see ``controls``); excludes weights.
            stroke_size: global stroke scale S: the style is encoded at style_size / S and S is passed
                to the model (deformable DIN scales its sampling offsets with it).
            stroke_map: grayscale map, black = small strokes (x0.5), white = large (x2).
            tile: force tiling with this core size; otherwise images over ``max_pixels_untiled`` pixels,
                or ones that run out of memory, are tiled automatically.
            restore: with alpha < 1, add back (1 - alpha) x what the model loses reconstructing the content
                (its output at alpha 0), so alpha 0 is the content itself; False = the model's own alpha only
                (``runtime.runner.run_model``). A second content pass when 0 < alpha < 1.
        """
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if not styles:
            raise UsageError("at least one style is needed")
        if not 0.0 <= alpha <= 1.0:
            raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
        stroke_size = check_stroke_size(stroke_size)
        if style_weights is not None and (mask is not None or len(style_weights) != len(styles)):
            raise UsageError("--style-weights needs one weight per --style and no --mask"
                             if mask is None else "--style-weights and --mask exclude each other")
        x, alpha_ch = content_tensor(image, max_pixels)
        hw = tuple(x.shape[-2:])
        label = lambda m, d: str(m) if isinstance(m, (str, os.PathLike)) else d  # noqa: E731
        regions = None if mask is None else region_masks(mask, len(styles), hw, label(mask, "mask"), max_pixels)
        per_unit = self._codes_for(styles, style_weights, style_size, stroke_size, by_region=regions is not None,
                                   with_map=stroke_map is not None)
        if stroke_map is None:
            codes, masks = [c for c, in per_unit], regions
            stroke = None if stroke_size == 1.0 else float(stroke_size)
        else:  # each region mixes its small-stroke and large-stroke code by the map
            v = gray_map(stroke_map, hw, label(stroke_map, "stroke map"), max_pixels)
            codes, masks = [], []
            for i, (small, large) in enumerate(per_unit):
                region = regions[i] if regions is not None else torch.ones_like(v)
                codes += [small, large]
                masks += [region * (1 - v), region * v]
            stroke = stroke_size * stroke_multiplier(v)
        out = run_model(self.model, x, codes, alpha=alpha, masks=masks, stroke=stroke, tile=tile,
                        max_pixels_untiled=max_pixels_untiled, progress=progress, restore=restore)
        out = out.clamp(0, 1)
        if preserve_color:
            out = controls.preserve_color(out, x)
        return like_input(out, image, alpha_ch)

    # ------------------------------------------------------------------ video
    def style_code(self, style: StyleLike | Sequence[StyleLike], style_size: int | None = None,
                   style_weights: Sequence[float] | None = None, stroke_size: float = 1.0) -> StyleCode:
        """One style or a list (blended with ``style_weights``), each an image, path, ``builtin:NAME``, saved
        code (.safetensors) or StyleCode -> one code on this device, encoded once. Style images are encoded at
        ``style_size`` / ``stroke_size`` px (default: the model's style size; a larger stroke size = larger strokes)."""
        if isinstance(style, StyleCode):
            return self.encode_style(style)  # checked against the model
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if not styles:
            raise UsageError("at least one style is needed")
        return self.blend_styles(styles, style_weights, style_size, check_stroke_size(stroke_size))

    def stylize_frames(self, frames: Iterable[Frame], style: StyleLike | Sequence[StyleLike], *, alpha: float = 1.0,
                       temporal: float = 0.0, batch_size: int | None = None, cut_threshold: float = CUT_THRESHOLD,
                       style_size: int | None = None, style_weights: Sequence[float] | None = None,
                       preserve_color: bool = False, stroke_size: float = 1.0,
                       max_pixels_untiled: int = DEFAULT_MAX_PIXELS_UNTILED, restore: bool = True) -> Iterator[Frame]:
        """Stylize a stream of frames, in order, with ``style`` (encoded once; see ``style_code``).

        Frames may be uint8/float (H, W, 3) arrays, PIL images or (3, H, W)/(1, 3, H, W) tensors in [0, 1];
        each output has the kind and size of its input. ``temporal`` in [0, 1] steadies the output (0 =
        independent frames) and resets at scene cuts; results do not depend on ``batch_size`` (default: 1 on
        CPU, where bigger batches measured no faster, 8 on GPUs).
        ``stroke_size`` S encodes the style at style_size / S (larger strokes) and passes S to the model.
        Frames over ``max_pixels_untiled`` pixels are stylized in tiles, as images are. ``alpha`` and
        ``restore`` work as in ``stylize``.
        """
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else AUTO_GPU_BATCH
        if batch_size < 1:
            raise UsageError(f"batch size must be >= 1, got {batch_size}")
        code = self.style_code(style, style_size, style_weights, stroke_size)
        run = FrameStylizer(self.model, code, alpha, temporal, cut_threshold, preserve_color, stroke_size,
                            max_pixels_untiled, device=self.device, dtype=self.dtype, restore=restore)
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
        ``controls`` are those of ``stylize_frames`` (alpha, restore, batch_size, cut_threshold, style_size,
        style_weights, preserve_color, stroke_size, max_pixels_untiled). Frames over ``max_pixels`` are refused;
        the output may be no input: the video, nor the style files, nor the model (``inputs``).
        Returns a summary dict (frames, size, fps, audio, timing).
        """
        controls["temporal"] = temporal
        output_size(16, 16, size, max_size)  # usage errors before any work
        bad = {k: v for k, v in controls.items() if k in ("alpha", "temporal") and not 0 <= v <= 1}
        if bad or (controls.get("batch_size") or 1) < 1:
            raise UsageError(f"alpha and temporal must be in [0, 1] and batch_size >= 1, got {bad or controls}")
        styles = style if isinstance(style, (list, tuple)) else [style]
        style_files = [src.path for src in map(style_source, styles) if src.path is not None]

        def begin():
            style_keys = ("style_size", "style_weights", "stroke_size")
            code = self.style_code(style, **{k: v for k, v in controls.items() if k in style_keys})
            return lambda frames: self.stylize_frames(frames, code, **controls)

        summary = {"model": self.model_id, **{k: v for k, v in controls.items() if k in ("alpha", "temporal")}}
        return transcode(in_path, out_path, begin, size=size, max_size=max_size, start=start, duration=duration,
                         overwrite=overwrite, progress=progress, max_pixels=max_pixels,
                         inputs=[*inputs, *style_files], summary=summary)
