"""Video files in and out through PyAV (which bundles its own ffmpeg): decode frames, keep the audio, write
atomically. Nothing here knows about style transfer.

Output containers by extension: .mp4/.m4v/.mov/.mkv -> H.264 (yuv420p, CRF 18), .webm -> VP9 (yuv420p),
.gif -> GIF (256-colour palette per frame, no audio). The audio stream is copied packet for packet when the
output container accepts its codec, else transcoded (AAC, or Opus for .webm).
"""
from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import numpy as np
from PIL import Image

from ..errors import DinstyleError, UsageError, first_line
from .images import DEFAULT_MAX_PIXELS, check_pixels
from .outputs import plan_outputs

# extension -> (ffmpeg container format, video encoder, fallback audio encoder or None)
FORMATS = {
    ".mp4": ("mp4", "libx264", "aac"), ".m4v": ("mp4", "libx264", "aac"), ".mov": ("mov", "libx264", "aac"),
    ".mkv": ("matroska", "libx264", "aac"), ".webm": ("webm", "libvpx-vp9", "libopus"), ".gif": ("gif", "gif", None),
}
ENCODER_OPTIONS = {
    "libx264": {"crf": "18", "preset": "medium"},
    "libvpx-vp9": {"crf": "32", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"},
}
# audio codecs each container takes as they are (ffmpeg's own list is wider than its muxers accept);
# None = any. Others are transcoded to the container's fallback codec.
COPY_AUDIO = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"},
    "matroska": None, "webm": {"opus", "vorbis"}, "gif": set(),
}
OUT_TIME_BASE = Fraction(1, 90000)  # fine enough for any frame rate; muxers rescale to their own


def output_format(path: Path) -> tuple[str, str, str | None]:
    """(container, video encoder, audio fallback) for an output path; a usage error for other extensions."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: unsupported output extension {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(FORMATS)}")
    return fmt


def needs_even_size(path: Path) -> bool:
    return output_format(path)[1] != "gif"  # yuv420p halves chroma in both directions


def _fail(path, what: str, e: Exception) -> DinstyleError:
    msg = getattr(e, "strerror", None) or first_line(e)
    return DinstyleError(f"{path}: {what} ({msg})")


class VideoReader:
    """Decodes one video file from ``start`` seconds for ``duration`` seconds (None = to the end).

    Frames over ``max_pixels`` are refused like images are (``images.check_pixels``): from the stream
    header when it knows the size, else (and for any size change) from each decoded frame."""

    def __init__(self, path: str | os.PathLike, start: float = 0.0, duration: float | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS):
        self.path = Path(path)
        if not self.path.exists():
            raise DinstyleError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise DinstyleError(f"{self.path}: is a directory, not a video")
        if not (math.isfinite(start) and start >= 0) or (duration is not None and not duration > 0):
            raise UsageError("--start must be a number >= 0 and --duration > 0")
        self.max_pixels = max_pixels
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise _fail(self.path, "not a readable video", e) from None
        if not self.container.streams.video:
            self.container.close()
            raise DinstyleError(f"{self.path}: has no video stream")
        self.video = self.container.streams.video[0]
        try:
            check_pixels(self.video.codec_context.width or 0, self.video.codec_context.height or 0, max_pixels,
                         f"{self.path}: frame size")
        except DinstyleError:
            self.container.close()
            raise
        self.video.thread_type = "AUTO"
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.fps = Fraction(self.video.average_rate or self.video.guessed_rate or self.video.base_rate or 25)
        self.start, self.duration = float(start), duration
        st = self.container.start_time
        self.t0 = st / av.time_base if st is not None else 0.0  # some containers start at pts != 0
        self.length = self._declared_length()

    def _declared_length(self) -> float | None:
        """Seconds the file claims to last: the streams' own durations, else the container's."""
        lengths = [float(s.duration * s.time_base) for s in (self.video, self.audio) if s is not None and s.duration]
        if not lengths and self.container.duration:
            lengths = [self.container.duration / av.time_base]
        return max(lengths) if lengths else None

    def expected_frames(self) -> int | None:
        """A frame-count estimate for the progress bar."""
        span = self.length - self.start if self.length else None
        if self.duration is not None:
            span = min(span, self.duration) if span is not None else self.duration
        if span is not None:
            return max(0, round(span * self.fps))
        return self.video.frames or None

    def frames(self, on_audio: Callable[[av.Packet, float], None] | None = None
               ) -> Iterator[tuple[av.VideoFrame, float]]:
        """Yield (frame, seconds since the segment start). Audio packets of the segment go to
        ``on_audio(packet, segment start in the packet's own seconds)`` as they are demuxed."""
        end = self.start + self.duration if self.duration is not None else None
        if self.start > 0:
            try:
                self.container.seek(int((self.t0 + self.start) * av.time_base), backward=True)
            except av.FFmpegError as e:
                raise _fail(self.path, "cannot seek", e) from None
        streams = [s for s in (self.video, self.audio if on_audio else None) if s is not None]
        last_end = {s.index: 0.0 for s in streams}  # how far each stream's data reached (seconds)
        video_done, audio_done = False, on_audio is None or self.audio is None
        n = 0
        try:
            for packet in self.container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.pts is not None and not audio_done:
                        t = float(packet.pts * packet.time_base) - self.t0
                        t_end = t + float((packet.duration or 0) * packet.time_base)
                        last_end[packet.stream.index] = t_end
                        audio_done = end is not None and t >= end
                        # keep encoder priming (t < 0) and the packet that straddles --start
                        if (self.start == 0 or t_end > self.start) and not audio_done:
                            on_audio(packet, self.start + self.t0)
                elif not video_done:
                    for frame in packet.decode():
                        check_pixels(frame.width, frame.height, self.max_pixels, f"{self.path}: frame size")
                        t = frame.time - self.t0 if frame.time is not None else n / float(self.fps)
                        last_end[self.video.index] = t + 1 / float(self.fps)
                        if end is not None and t >= end - 1e-6:
                            video_done = True
                            break
                        if t >= self.start - 1e-6:
                            n += 1
                            yield frame, t - self.start
                if video_done and audio_done:
                    break
        except av.FFmpegError as e:
            raise _fail(self.path, "cannot decode video, the file may be truncated or corrupt", e) from None
        if n == 0:
            where = f" from --start {self.start:g} s on" if self.start else ""
            raise DinstyleError(f"{self.path}: contains no video frames{where}")
        self._check_complete(max(last_end.values()), end)

    def _check_complete(self, reached: float, end: float | None) -> None:
        """Decoders stop silently at the end of a cut-off file: compare with the length it declares."""
        if self.length is None:
            return
        expected = min(self.length, end) if end is not None else self.length
        if reached < expected - max(0.25, 3 / float(self.fps)):
            raise DinstyleError(f"{self.path}: truncated (data ends at {reached:.2f} s of {expected:.2f} s)")

    def close(self) -> None:
        self.container.close()


def to_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """Decoded frame -> uint8 (height, width, 3) RGB, scaled by ffmpeg's swscale (area filter)."""
    if (frame.width, frame.height) == (width, height):
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")


class VideoWriter:
    """Encodes RGB frames (and the input's audio) into ``path``, in the format of ``like``'s extension
    (``path`` is a temporary file; the caller renames it)."""

    def __init__(self, path: Path, like: Path, width: int, height: int, fps: Fraction,
                 audio: av.AudioStream | None):
        self.fmt, self.vcodec, self.audio_fallback = output_format(like)
        self.path, self.size, self.fps, self.audio_in = path, (width, height), fps, audio
        copy = audio is not None and self.audio_fallback is not None and self._can_copy(audio)
        try:
            self._open(copy)
        except av.FFmpegError:
            if not copy:
                raise
            self._open(False)  # the muxer refused the copied stream after all (and was closed): transcode it
        self.last_pts = -1

    def _can_copy(self, audio: av.AudioStream) -> bool:
        name = audio.codec_context.codec.canonical_name
        allowed = COPY_AUDIO.get(self.fmt)
        return name in allowed if allowed is not None else audio.codec_context.name in av.codecs_available

    def _open(self, copy_audio: bool) -> None:
        """Create the container and its streams, and write the header (a muxer that refuses fails here);
        on any failure the container is closed again."""
        self.container = av.open(str(self.path), "w", format=self.fmt)
        try:
            self._add_streams(copy_audio)
        except BaseException:
            self.abort()
            raise

    def _add_streams(self, copy_audio: bool) -> None:
        self.video = self.container.add_stream(self.vcodec, rate=self.fps, options=ENCODER_OPTIONS.get(self.vcodec, {}))
        self.video.width, self.video.height = self.size
        self.video.pix_fmt = "pal8" if self.vcodec == "gif" else "yuv420p"
        self.video.codec_context.time_base = OUT_TIME_BASE
        self.audio_out, self.audio_note = None, "none"
        audio = self.audio_in
        if audio is not None:
            name = audio.codec_context.codec.canonical_name
            if self.audio_fallback is None:
                self.audio_note = f"dropped ({self.fmt} has no audio)"
            elif copy_audio:
                self.audio_out = self.container.add_stream_from_template(audio)
                self.audio_note = f"copied ({name})"
            else:
                layout = "mono" if audio.channels == 1 else "stereo"  # more channels are downmixed
                rate = 48000 if self.audio_fallback == "libopus" else audio.rate
                self.audio_out = self.container.add_stream(self.audio_fallback, rate=rate, layout=layout)
                self.audio_note = f"transcoded ({name} -> {self.audio_out.codec_context.codec.canonical_name})"
        self.container.start_encoding()

    @property
    def copies_audio(self) -> bool:
        return self.audio_note.startswith("copied")

    def write(self, rgb: np.ndarray, seconds: float) -> None:
        """Encode one uint8 (H, W, 3) frame shown at ``seconds`` from the start."""
        if self.video.pix_fmt == "pal8":
            im = Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            pal = np.asarray(im.getpalette(), np.uint8)[: 256 * 3].reshape(-1, 3)
            argb = np.zeros((256, 4), np.uint8)
            argb[:, 0], argb[: len(pal), 1:] = 255, pal
            frame = av.VideoFrame.from_ndarray((np.asarray(im), argb), format="pal8")
        else:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        pts = max(round(seconds / OUT_TIME_BASE), self.last_pts + 1)  # strictly increasing, even for VFR input
        frame.pts, frame.time_base, self.last_pts = pts, OUT_TIME_BASE, pts
        self.container.mux(self.video.encode(frame))

    def write_audio(self, packet: av.Packet, start: float) -> None:
        """Copy (or transcode) one input audio packet, shifted so ``start`` seconds becomes 0."""
        if self.audio_out is None:
            return
        shift = round(start / packet.time_base)
        if self.copies_audio:
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.audio_out
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder counts samples from 0
            self.container.mux(self.audio_out.encode(frame))

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        self.container.mux(self.video.encode(None))
        if self.audio_out is not None and not self.copies_audio:
            self.container.mux(self.audio_out.encode(None))
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # the file is deleted anyway; a broken close must not hide the real error
            pass


def check_paths(in_path: Path, out_path: Path, overwrite: bool, inputs: Sequence = ()) -> None:
    """Never an input (the video, nor ``inputs``: styles, the model; ``dinstyle.io.outputs``), never an existing
    file without ``overwrite``, and a directory that exists."""
    output_format(out_path)
    reason = plan_outputs([(str(in_path), in_path, out_path)], inputs, overwrite)[0]
    if reason is not None:
        raise (UsageError if reason.kind in ("input", "shared") else DinstyleError)(str(reason))
    if not out_path.parent.is_dir():
        raise DinstyleError(f"{out_path.parent}: no such directory")
