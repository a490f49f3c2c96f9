"""What one ``POST /api/stylize`` does, without any web package: read the fields into a ``StyleOptions`` (the
library checks it), then (in a job queue's worker) decode -> stylize -> encode, reporting each stage, the
model's progress and its cancel checks to the request's :class:`~dinstyle.serve.jobs.Job`.

Bad input is refused with the CLI's own rules and messages: images are opened by ``io.images.open_image``
(only the allowed formats, the pixel guard read from the header, truncated or disguised files as one
line naming the file), results are encoded by ``io.images.image_bytes`` (the encoders' refusals as one line).
Style codes are cached per style (a hash of the uploaded bytes, or the built-in's file) and style size in the
Stylizer's one bounded cache (``runtime.codecache``), so a second request with the same style, at any
strength, pays only for the content path.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError, first_line
from ..io.builtin_styles import PREFIX, builtin_style
from .jobs import Job

if TYPE_CHECKING:
    from ..runtime.request import StyleOptions

FIELDS = ("content", "style", "style_weights", "alpha", "preserve_color", "stroke_size", "style_size", "max_size",
          "format", "job_id")
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}  # what a browser shows
MAX_STYLES = 8
MIN_STYLE_SIZE, MAX_STYLE_SIZE = 16, 2048  # the CLI's floor; a ceiling keeps one request's VGG pass bounded
MIN_SIZE = 16
# ids the page makes (24 hex digits) or a client chooses: long enough to be unguessable, safe in a URL and a log
JOB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


@dataclass(frozen=True)
class Upload:
    """An uploaded file: the name the client gave (for messages only) and its bytes."""

    filename: str
    data: bytes


Value = str | Upload


@dataclass
class StyleRequest:
    content: Upload
    styles: list[Value]  # Upload or 'builtin:NAME'
    options: StyleOptions  # alpha, weights, colours, stroke size: the library's own checks, done once
    style_size: int | None = None  # None: the model's default (the service encodes and caches the codes)
    max_size: int | None = None  # None: full size
    format: str = "png"
    job_id: str | None = None  # None: the server makes one


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


def _number(form, key: str, kind: type, lo: float | None = None, hi: float | None = None, what: str = "a number"):
    """A number field (None when absent). Only the server's own limits are given here; the library's
    controls (alpha, stroke size) are read as plain numbers and checked by ``StyleOptions``."""
    text = _text(form, key)
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (lo is not None and not (math.isfinite(value) and value >= lo)) or \
            (hi is not None and value > hi):
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


def _styles(form) -> list[Value]:
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
    return styles


def _options(form, styles: int) -> StyleOptions:
    """The form's controls translated into the library's ``StyleOptions``, which checks them (its messages)."""
    from ..runtime.request import StyleOptions

    weights = _text(form, "style_weights")
    if weights is not None:
        try:
            weights = [float(v) for v in weights.split(",")]
        except ValueError:
            raise UsageError(f"style_weights must be comma-separated numbers, one per style, got {weights[:40]!r}"
                             ) from None
    alpha = _number(form, "alpha", float, what="a number from 0 to 1")
    stroke = _number(form, "stroke_size", float, what="a number (1 = the model's own strokes)")
    opts = StyleOptions(alpha=1.0 if alpha is None else alpha, style_weights=weights,
                        preserve_color=_bool(form, "preserve_color"), stroke_size=1.0 if stroke is None else stroke)
    opts.check_styles(styles)
    return opts


def parse_request(form: Mapping[str, Sequence[Value]]) -> StyleRequest:
    """The multipart fields (name -> values, each text or :class:`Upload`) -> a checked request.

    Everything that can be checked without decoding an image is checked here, before the request
    queues: unknown or repeated fields, the controls (by ``StyleOptions``), the server's own limits,
    the built-in names, the format.
    """
    unknown = sorted(set(form) - set(FIELDS))
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    content = _one(form, "content")
    if content is None:
        raise UsageError("content: missing; send the photo as a file field named 'content' (multipart/form-data)")
    if not isinstance(content, Upload):
        raise UsageError("content: expected a file upload (multipart/form-data), got a text value")
    styles = _styles(form)
    fmt = (_text(form, "format") or "png").lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {fmt[:20]!r}")
    job_id = _text(form, "job_id")
    if job_id is not None and not JOB_ID.fullmatch(job_id):
        raise UsageError(f"job_id must be 8 to 64 letters, digits, '-' or '_', got {job_id[:70]!r}")
    return StyleRequest(
        content=content, styles=styles, options=_options(form, len(styles)),
        style_size=_number(form, "style_size", int, MIN_STYLE_SIZE, MAX_STYLE_SIZE,
                           f"a whole number of pixels from {MIN_STYLE_SIZE} to {MAX_STYLE_SIZE}"),
        max_size=_number(form, "max_size", int, MIN_SIZE, None, f"a whole number of pixels, at least {MIN_SIZE}"),
        format=fmt, job_id=job_id)


class StyleService:
    """A loaded :class:`~dinstyle.api.Stylizer` (whose ``codes`` is the style-code cache). ``run`` is called by
    the job queue's workers (two lanes)."""

    def __init__(self, stylizer, max_pixels: int | None = None):
        from ..api import DEFAULT_STYLE_SIZE
        from ..io.images import DEFAULT_MAX_PIXELS

        self.stylizer = stylizer
        self.max_pixels = max_pixels or DEFAULT_MAX_PIXELS
        self.default_style_size = int(getattr(stylizer, "style_size", None) or DEFAULT_STYLE_SIZE)
        self._encoding = threading.Lock()  # one style at a time: the cache's ``last_hit`` is then this one's

    @property
    def cached_styles(self) -> int:
        return len(self.stylizer.codes)

    def encode_style(self, style: Value, size: int):
        """One style (an upload or ``builtin:NAME``) -> (its code at ``size``, whether it came from the cache):
        the Stylizer's ``encode_style``, one style at a time. An upload is keyed by its bytes' hash and decoded
        only on a miss (its header checked here: the server's pixel guard, its name)."""
        from PIL import UnidentifiedImageError

        from ..errors import DinstyleError
        from ..io.images import open_lazy
        from ..runtime.sources import IMAGE, StyleSource

        source = style
        if not isinstance(style, str):
            name = label(style.filename, "style")
            try:
                with open_lazy(io.BytesIO(style.data), self.max_pixels, name):
                    pass
            except UnidentifiedImageError:  # open_image's words for it
                raise DinstyleError(f"{name}: not an image, or a format Pillow cannot read") from None
            source = StyleSource(IMAGE, style.data, name, sha256=hashlib.sha256(style.data).hexdigest(),
                                 max_pixels=self.max_pixels)
        with self._encoding:
            code = self.stylizer.encode_style(source, size)
            return code, self.stylizer.codes.last_hit

    def pixels(self, req: StyleRequest) -> int:
        """The pixels the model will run for ``req`` (after ``max_size``), read from the photo's header only:
        what picks its lane. 0 when the header cannot be read (the worker then refuses it, with its message)."""
        from ..io.images import open_lazy

        try:
            with open_lazy(io.BytesIO(req.content.data), self.max_pixels, "content") as im:
                w, h = im.size
        except Exception:  # noqa: BLE001 -- anything wrong with the file is answered by open_image, in the lane
            return 0
        if req.max_size and max(w, h) > req.max_size:
            s = req.max_size / max(w, h)
            w, h = max(1, round(w * s)), max(1, round(h * s))
        return w * h

    def run(self, req: StyleRequest, job: Job | None = None) -> Result:
        """Decode, stylize, encode; ``job`` (default: a detached one) sees each stage, the model's progress
        and cancel checks, and stops it (:class:`~dinstyle.errors.Cancelled`) once cancelled."""
        job = job or Job()
        name = label(req.content.filename, "content")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            job.enter("reading the photo")
            x = self._content(req, name)
            job.enter("encoding the style")
            found = [self.encode_style(s, req.style_size or self.default_style_size) for s in req.styles]
            codes = [c for c, _ in found]
            job.enter("stylizing")
            opts = dataclasses.replace(req.options, max_pixels=self.max_pixels, progress=job.progress,
                                       cancel=job.cancelled,
                                       style_weights=req.options.style_weights if len(codes) > 1 else None)
            y = self.stylizer.stylize(x, codes if len(codes) > 1 else codes[0], opts)
            job.enter("encoding the result")
            data, im, out_name, fmt = self._encode(y, req.format, name)
        from PIL import Image

        return Result(data=data, media_type=Image.MIME.get(fmt, "application/octet-stream"), filename=out_name,
                      size=im.size, cache="hit" if all(hit for _, hit in found) else "miss",
                      warnings=list(dict.fromkeys(first_line(w.message) for w in caught)))

    def _content(self, req: StyleRequest, name: str):
        """The photo as a (1, 3|4, H, W) tensor, shrunk to ``max_size``."""
        import torch

        from ..io.images import open_image, pil_to_tensor
        from ..runtime.controls import resize_long_side

        rgb, alpha_ch = open_image(req.content.data, self.max_pixels, name=name)
        x = pil_to_tensor(rgb)
        if alpha_ch is not None:  # a fourth channel: passed through by the Stylizer, resized with the image
            x = torch.cat([x, pil_to_tensor(alpha_ch)[:, :1]], 1)
        if req.max_size and max(x.shape[-2:]) > req.max_size:
            x = resize_long_side(x, req.max_size)
        return x

    @staticmethod
    def _encode(y, fmt_name: str, name: str):
        from ..io.images import image_bytes, tensor_to_pil

        im = tensor_to_pil(y)
        fmt = FORMATS[fmt_name]
        out_name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:60] + f"_stylized.{fmt_name}"
        return image_bytes(im, fmt, out_name), im, out_name, fmt
