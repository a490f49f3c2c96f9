"""What one ``POST /api/stylize`` does, without any web package: check the fields, then (in the job
queue's worker) decode -> stylize -> encode.

Bad input is refused with the CLI's own rules and messages: images are opened by ``io.images.open_image``
(only the allowed formats, the pixel guard read from the header, truncated or disguised files as one
line naming the file), results are encoded by ``io.images.image_bytes`` (the encoders' refusals as one line).
Style codes are cached per style (a hash of the uploaded bytes, or the built-in's name) and style size,
so a second request with the same style, at any strength, pays only for the content path.
"""
from __future__ import annotations

import hashlib
import math
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, Union

from ..errors import UsageError
from ..io.builtin_styles import PREFIX, builtin_style

FIELDS = ("content", "style", "style_weights", "alpha", "preserve_color", "style_size", "max_size", "format")
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}  # what a browser shows
MAX_STYLES = 8
MIN_STYLE_SIZE, MAX_STYLE_SIZE = 16, 2048  # the CLI's floor; a ceiling keeps one request's VGG pass bounded
MIN_SIZE = 16


@dataclass(frozen=True)
class Upload:
    """An uploaded file: the name the client gave (for messages only) and its bytes."""

    filename: str
    data: bytes


Value = Union[str, Upload]


@dataclass
class StyleRequest:
    content: Upload
    styles: list[Value]  # Upload or 'builtin:NAME'
    style_weights: list[float] | None = None
    alpha: float = 1.0
    preserve_color: bool = False
    style_size: int | None = None  # None: the model's default
    max_size: int | None = None  # None: full size
    format: str = "png"


@dataclass
class Result:
    data: bytes
    media_type: str
    filename: str
    size: tuple[int, int]
    cache: str  # 'hit' when every style code came from the cache, else 'miss'
    warnings: list[str] = field(default_factory=list)


def label(name: str | None, default: str) -> str:
    """A client's file name, safe to print in a message (no folders, no control characters)."""
    name = Path(str(name or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())[:80]
    return name or default


def _one(form: Mapping[str, Sequence[Value]], key: str) -> Value | None:
    values = form.get(key) or []
    if len(values) > 1:
        raise UsageError(f"{key}: given {len(values)} times; give it once")
    return values[0] if values else None


def _text(form, key: str) -> str | None:
    value = _one(form, key)
    if isinstance(value, Upload):
        raise UsageError(f"{key}: expected a value, got a file")
    return None if value is None or value.strip() == "" else value.strip()


def _number(form, key: str, kind: type, lo: float, hi: float | None, what: str):
    text = _text(form, key)
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < lo or (hi is not None and value > hi):
        raise UsageError(f"{key} must be {what}, got {text[:40]!r}")
    return value


def _bool(form, key: str) -> bool:
    text = _text(form, key)
    if text is None:
        return False
    value = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
             "off": False}.get(text.lower())
    if value is None:
        raise UsageError(f"{key} must be true or false, got {text[:40]!r}")
    return value


def parse_request(form: Mapping[str, Sequence[Value]]) -> StyleRequest:
    """The multipart fields (name -> values, each text or :class:`Upload`) -> a checked request.

    Everything that can be checked without decoding an image is checked here, before the request
    queues: unknown or repeated fields, numbers and their ranges, the built-in names, the format.
    """
    unknown = sorted(set(form) - set(FIELDS))
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    content = _one(form, "content")
    if content is None:
        raise UsageError("content: missing; send the photo as a file field named 'content' (multipart/form-data)")
    if not isinstance(content, Upload):
        raise UsageError("content: expected a file upload (multipart/form-data), got a text value")
    styles = list(form.get("style") or [])
    if not styles:
        raise UsageError("style: missing; send a style image file, or style=builtin:NAME (GET /api/styles lists them)")
    if len(styles) > MAX_STYLES:
        raise UsageError(f"style: {len(styles)} styles; at most {MAX_STYLES} can be blended")
    for i, s in enumerate(styles):
        if isinstance(s, str):
            s = styles[i] = s.strip()
            if not s.startswith(PREFIX):
                raise UsageError(f"style: {s[:60]!r} is neither an uploaded file nor builtin:NAME")
            builtin_style(s)  # unknown names: the CLI's one-line list of the choices
    weights = _text(form, "style_weights")
    if weights is not None:
        from ..models.stylecode import normalized_weights

        try:
            weights = [float(v) for v in weights.split(",")]
            normalized_weights(weights, len(styles))  # the one rule for blend weights
        except ValueError as e:
            raise UsageError(f"style_weights: {e} (give one comma-separated weight per style)") from None
    fmt = (_text(form, "format") or "png").lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {fmt[:20]!r}")
    alpha = _number(form, "alpha", float, 0.0, 1.0, "a number between 0 and 1")
    return StyleRequest(
        content=content, styles=styles, style_weights=weights,
        alpha=1.0 if alpha is None else alpha,
        preserve_color=_bool(form, "preserve_color"),
        style_size=_number(form, "style_size", int, MIN_STYLE_SIZE, MAX_STYLE_SIZE,
                           f"a whole number of pixels from {MIN_STYLE_SIZE} to {MAX_STYLE_SIZE}"),
        max_size=_number(form, "max_size", int, MIN_SIZE, None, f"a whole number of pixels, at least {MIN_SIZE}"),
        format=fmt)


class StyleService:
    """A loaded :class:`~dinstyle.api.Stylizer` and the style-code cache. ``run`` is called by the job
    queue's single worker; the cache has its own lock all the same."""

    def __init__(self, stylizer, max_pixels: int | None = None, cache_size: int = 32):
        from ..api import DEFAULT_STYLE_SIZE
        from ..io.images import DEFAULT_MAX_PIXELS

        self.stylizer = stylizer
        self.max_pixels = max_pixels or DEFAULT_MAX_PIXELS
        self.default_style_size = int(getattr(stylizer, "style_size", None) or DEFAULT_STYLE_SIZE)
        self.cache_size = cache_size
        self._codes: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def cached_styles(self) -> int:
        return len(self._codes)

    def style_code(self, style: Value, size: int):
        """The style's code at ``size``, and whether it came from the cache."""
        from ..io.images import open_image

        key = (style if isinstance(style, str) else hashlib.sha256(style.data).hexdigest(), size)
        with self._lock:
            if key in self._codes:
                self._codes.move_to_end(key)
                return self._codes[key], True
        if isinstance(style, str):
            code = self.stylizer.encode_style(style, size)
        else:
            rgb, _ = open_image(style.data, self.max_pixels, name=label(style.filename, "style"))
            code = self.stylizer.encode_style(rgb, size)
        with self._lock:
            self._codes[key] = code
            while len(self._codes) > self.cache_size:
                self._codes.popitem(last=False)
        return code, False

    def run(self, req: StyleRequest) -> Result:
        import torch

        from ..io.images import image_bytes, open_image, pil_to_tensor, tensor_to_pil
        from ..runtime.controls import resize_long_side

        name = label(req.content.filename, "content")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rgb, alpha_ch = open_image(req.content.data, self.max_pixels, name=name)
            x = pil_to_tensor(rgb)
            if alpha_ch is not None:  # a fourth channel: passed through by the Stylizer, resized with the image
                x = torch.cat([x, pil_to_tensor(alpha_ch)[:, :1]], 1)
            if req.max_size and max(x.shape[-2:]) > req.max_size:
                x = resize_long_side(x, req.max_size)
            found = [self.style_code(s, req.style_size or self.default_style_size) for s in req.styles]
            codes = [c for c, _ in found]
            y = self.stylizer.stylize(x, codes if len(codes) > 1 else codes[0], alpha=req.alpha,
                                      style_weights=req.style_weights if len(codes) > 1 else None,
                                      preserve_color=req.preserve_color, max_pixels=self.max_pixels)
            im = tensor_to_pil(y)
            fmt = FORMATS[req.format]
            out_name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:60] + f"_stylized.{req.format}"
            data = image_bytes(im, fmt, out_name)
        from PIL import Image

        return Result(data=data, media_type=Image.MIME.get(fmt, "application/octet-stream"), filename=out_name,
                      size=im.size, cache="hit" if all(hit for _, hit in found) else "miss",
                      warnings=list(dict.fromkeys(str(w.message).splitlines()[0] for w in caught)))
