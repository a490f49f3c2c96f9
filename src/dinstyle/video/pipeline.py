"""Video style transfer: frames stream through the compact content network in batches with one style code,
optionally steadied over time (see ``temporal``). This layer knows a model and a code, not the ``Stylizer``:

* ``FrameStylizer(model, code, ...)``: one batch of frames in, the stylized batch out (temporal state carried).
* ``stream_frames(run, frames, batch_size)``: any iterable of frames in, an iterator of stylized frames out.
* ``transcode(in_path, out_path, start)``: a video file in, a video file out (audio kept, written atomically:
  a temporary sibling renamed at the end, removed on any error, Ctrl-C or SIGTERM); ``start()`` returns
  the callable that stylizes the stream of frames.

``Stylizer.stylize_frames`` / ``Stylizer.stylize_video`` (and ``dinstyle.video.stylize_frames`` /
``stylize_video``) resolve the style and call these.

Frames take the images' path (``runtime.runner.run_model``): tiled above ``max_pixels_untiled``, retried in
tiles when memory runs out, refused when the result is not finite; video files get the images' pixel
guard (``max_pixels``) on every frame.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np
import torch
from PIL import Image

from ..defaults import model_reference_size, scale_for
from ..errors import DinstyleError, UsageError, first_line
from ..io.atomic import atomic_path
from ..io.images import DEFAULT_MAX_PIXELS
from ..models.base import StyleTransferNet
from ..models.stylecode import StyleCode
from ..runtime.controls import preserve_color
from ..runtime.request import RunRequest, StyleOptions
from ..runtime.runner import run_model
from .temporal import CUT_THRESHOLD, TemporalSmoother

Frame = Union[np.ndarray, Image.Image, torch.Tensor]
FrameFn = Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]]  # a stream of RGB frames -> stylized frames
AUTO_GPU_BATCH = 8


# ------------------------------------------------------------------------------------------ frames
def _frame_to_tensor(frame: Frame) -> torch.Tensor:
    """One frame -> (1, 3, H, W): uint8 stays uint8 (converted on the device), floats are [0, 1]."""
    if isinstance(frame, Image.Image):
        frame = np.asarray(frame.convert("RGB"))
    if isinstance(frame, np.ndarray):
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) RGB arrays, got shape {frame.shape}")
        frame = np.ascontiguousarray(frame) if frame.flags.writeable else frame.copy()  # torch wants writable
        t = torch.from_numpy(frame).permute(2, 0, 1)
        return (t if frame.dtype == np.uint8 else t.float()).unsqueeze(0)
    if torch.is_tensor(frame):
        t = frame.unsqueeze(0) if frame.dim() == 3 else frame
        if t.dim() != 4 or t.shape[:2] != (1, 3):
            raise ValueError(f"tensor frames must be (3, H, W) or (1, 3, H, W), got {tuple(frame.shape)}")
        return t
    raise TypeError(f"unsupported frame type {type(frame).__name__}")


def _wants_float(like: Frame) -> bool:
    return torch.is_tensor(like) or (isinstance(like, np.ndarray) and like.dtype != np.uint8)


def _tensor_to_frame(y: torch.Tensor, u8: np.ndarray | None, like: Frame) -> Frame:
    """(1, 3, H, W) in [0, 1] (and its uint8 (H, W, 3) copy) -> the same kind of object as ``like``."""
    if torch.is_tensor(like):
        y = y.to(like.dtype) if like.is_floating_point() else y
        return y if like.dim() == 4 else y[0]
    if _wants_float(like):
        return y[0].permute(1, 2, 0).cpu().numpy().astype(like.dtype)
    return Image.fromarray(u8) if isinstance(like, Image.Image) else u8


class FrameStylizer:
    """Stylizes batches of consecutive frames with one style code and one ``StyleOptions``, carrying the
    temporal state. Each batch becomes a ``RunRequest``: the same stroke scale for every frame of one size."""

    def __init__(self, model: StyleTransferNet, code: StyleCode, options: StyleOptions | None = None,
                 temporal: float = 0.0, cut_threshold: float = CUT_THRESHOLD, *, device: torch.device | None = None,
                 dtype: torch.dtype | None = None):
        param = next(model.parameters())
        self.model, self.options = model, options or StyleOptions()
        self.device, self.dtype = device or param.device, dtype or param.dtype  # the model's: float16 on CUDA by default
        self.code = code.to(self.device, self.dtype)
        self.smoother = TemporalSmoother(temporal, cut_threshold)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float in [0, 1] (any device) -> float32 (B, 3, H, W) in [0, 1] on the device."""
        x = x.to(self.device, non_blocking=True)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        smooth = None
        if self.smoother.active:
            self.smoother.begin(x)
            smooth = self.smoother.smooth
        o = self.options
        request = RunRequest([self.code], alpha=o.alpha, restore=o.restore, tile=o.tile,
                             scale=scale_for(*x.shape[-2:], o.stroke_size, model_reference_size(self.model)),
                             detail_scale=scale_for(*x.shape[-2:], 1.0, model_reference_size(self.model)),
                             dither=o.dither, max_pixels_untiled=o.max_pixels_untiled, smooth=smooth, cancel=o.cancel)
        y = run_model(self.model, x, request).clamp(0, 1)
        if o.preserve_color:
            y = preserve_color(y, x)
        return self.smoother.blend(x, y)


def _batches(frames: Iterable[Frame], batch_size: int) -> Iterator[list[Frame]]:
    """Consecutive frames of one size and dtype, at most ``batch_size`` at a time."""
    batch: list[Frame] = []
    key = None
    for f in frames:
        t = _frame_to_tensor(f)
        k = (tuple(t.shape), t.dtype)
        if batch and (k != key or len(batch) == batch_size):
            yield batch
            batch = []
        batch.append((f, t))
        key = k
    if batch:
        yield batch


def stream_frames(run: Callable[[torch.Tensor], torch.Tensor], frames: Iterable[Frame],
                  batch_size: int) -> Iterator[Frame]:
    """Stylize a stream of frames, in order, ``batch_size`` at a time with ``run`` (a ``FrameStylizer``).

    Frames may be uint8/float (H, W, 3) arrays, PIL images or (3, H, W)/(1, 3, H, W) tensors in [0, 1];
    each output has the kind and size of its input."""
    for batch in _batches(frames, batch_size):
        y = run(torch.cat([t for _, t in batch]))
        u8 = None  # quantised on the device, one transfer per batch
        if not all(_wants_float(f) for f, _ in batch):
            u8 = (y * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for i, (f, _) in enumerate(batch):
            yield _tensor_to_frame(y[i : i + 1], None if u8 is None else u8[i], f)


# ------------------------------------------------------------------------------------------ files
def output_size(width: int, height: int, size: int | None, max_size: int | None) -> tuple[int, int]:
    """Frame size after ``size`` (long side = N) or ``max_size`` (long side <= N; never enlarges)."""
    if size and max_size:
        raise UsageError("use --size or --max-size, not both")
    target = size or (max_size if max_size and max(width, height) > max_size else None)
    if target:
        if target < 8:
            raise UsageError(f"size must be >= 8, got {target}")
        s = target / max(width, height)
        width, height = max(1, round(width * s)), max(1, round(height * s))
    return width, height


def transcode(in_path: str | os.PathLike, out_path: str | os.PathLike, begin: Callable[[], FrameFn], *,
              size: int | None = None, max_size: int | None = None, start: float = 0.0,
              duration: float | None = None, overwrite: bool = False, progress: bool = True,
              max_pixels: int | None = DEFAULT_MAX_PIXELS, inputs: Sequence = (), summary: dict | None = None) -> dict:
    """Restyle the video ``in_path`` into ``out_path`` (format from its extension; see ``io.videofiles``).

    Keeps the timing (frame rate, variable too) and the audio; ``size``/``max_size`` resize the long side;
    ``start``/``duration`` (seconds) cut a segment. ``begin()`` is called once the files are open (the style
    is encoded there: frames/s counts the per-frame work only) and returns the callable that stylizes the
    stream of RGB frames. Frames over ``max_pixels`` are refused; the output may be no input: the video, nor
    the style files, nor the model (``inputs``). Returns a summary dict (frames, size, fps, audio, timing,
    then ``summary``).
    """
    import av
    from tqdm import tqdm

    from ..io.videofiles import check_paths, needs_even_size

    in_path, out_path = Path(in_path), Path(out_path)
    output_size(16, 16, size, max_size)  # usage errors before any work
    check_paths(in_path, out_path, overwrite, inputs)
    even = needs_even_size(out_path)
    reader, tmp = _open_files(in_path, out_path, start, duration, max_pixels)
    job = _Transcode(reader, tmp, out_path, size, max_size, even)
    try:
        with tqdm(total=reader.expected_frames(), unit="frame", disable=not progress, dynamic_ncols=True,
                  desc=out_path.name, leave=False) as bar:
            stylize = begin()
            n, elapsed = job.write_all(stylize, bar)
            os.replace(tmp, out_path)
    except BaseException as e:
        job.abort()
        if isinstance(e, (OSError, av.FFmpegError)):  # disk full, encoder refused...: one line, no traceback
            raise DinstyleError(f"{out_path}: cannot write video ({first_line(e)})") from None
        raise
    finally:
        reader.close()
        tmp.unlink(missing_ok=True)
    return job.report(n, elapsed, summary)


def _open_files(in_path: Path, out_path: Path, start: float, duration: float | None, max_pixels: int | None):
    """The opened input and the temporary sibling of ``out_path`` that is written, then renamed."""
    from ..io.videofiles import VideoReader

    reader = VideoReader(in_path, start, duration, max_pixels)
    try:
        return reader, atomic_path(out_path)
    except OSError as e:
        reader.close()
        raise DinstyleError(f"{out_path.parent}: cannot write here ({e.strerror or e})") from None


class _Transcode:
    """Decoded frames in, stylized frames out to ``tmp``. The writer opens on the first frame, whose size
    fixes the output's (the header may not know it); audio demuxed before then waits in ``pending_audio``."""

    def __init__(self, reader, tmp: Path, out_path: Path, size: int | None, max_size: int | None, even: bool):
        self.reader, self.tmp, self.out_path = reader, tmp, out_path
        self.size, self.max_size, self.even = size, max_size, even
        self.writer = None
        self.content_wh: tuple[int, int] | None = None  # every frame is scaled to this (the first frame's)
        self.pending_audio: list = []
        self.times: list[float] = []  # presentation time of every decoded frame

    def on_audio(self, packet, seg_start) -> None:
        if self.writer:
            self.writer.write_audio(packet, seg_start)
        else:
            self.pending_audio.append((packet, seg_start))

    def frames(self) -> Iterator[np.ndarray]:
        """The input's RGB frames at the output size (padded to the writer's even size where needed)."""
        from ..io.videofiles import to_rgb

        for frame, t in self.reader.frames(self.on_audio):
            if self.writer is None:
                self._open_writer(frame)
            self.times.append(t)
            yield _pad_to(to_rgb(frame, *self.content_wh), self.writer.video.width, self.writer.video.height)

    def _open_writer(self, frame) -> None:
        from ..io.videofiles import VideoWriter

        self.content_wh = output_size(frame.width, frame.height, self.size, self.max_size)
        w, h = (v + v % 2 if self.even else v for v in self.content_wh)
        self.writer = VideoWriter(self.tmp, self.out_path, w, h, self.reader.fps, self.reader.audio)
        for packet, s in self.pending_audio:
            self.writer.write_audio(packet, s)
        self.pending_audio.clear()

    def write_all(self, stylize: FrameFn, bar) -> tuple[int, float]:
        """Every stylized frame at its input frame's time; (frames, seconds of per-frame work)."""
        t_start = time.perf_counter()  # frames/s counts the per-frame work, not the style encoding
        n = 0
        for out in stylize(self.frames()):
            self.writer.write(out, self.times[n])
            n += 1
            bar.update(1)
        self.writer.close()
        return n, time.perf_counter() - t_start

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()

    def report(self, n: int, elapsed: float, summary: dict | None) -> dict:
        return {"output": str(self.out_path), "frames": n, "width": self.writer.video.width,
                "height": self.writer.video.height, "fps": float(self.reader.fps), "audio": self.writer.audio_note,
                "seconds": round(elapsed, 3), "frames_per_second": round(n / elapsed, 2) if elapsed > 0 else None,
                **(summary or {})}


def _pad_to(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """Repeat the last row/column up to (h, w): odd sizes become even for yuv420p."""
    ph, pw = h - rgb.shape[0], w - rgb.shape[1]
    return np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph > 0 or pw > 0 else rgb
