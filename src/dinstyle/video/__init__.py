"""Video: frames streamed through the model with one style code (``pipeline``), steadied over time (``temporal``).

This package knows a model and a style code, not the ``Stylizer``: ``Stylizer.stylize_frames`` and
``Stylizer.stylize_video`` resolve the style and call ``pipeline``. The two functions below are the same entry
points in the form docs/VIDEO.md shows (``stylize_frames(stylizer, frames, style)``); video files themselves are
read and written by ``dinstyle.io.videofiles``.
"""
from .pipeline import FrameStylizer, output_size, stream_frames, transcode


def stylize_frames(stylizer, frames, style, **options):
    """``stylizer.stylize_frames(frames, style, **options)``: any iterable of frames in, stylized frames out."""
    return stylizer.stylize_frames(frames, style, **options)


def stylize_video(stylizer, in_path, out_path, style, **options) -> dict:
    """``stylizer.stylize_video(in_path, out_path, style, **options)``: a video file in, a video file out."""
    return stylizer.stylize_video(in_path, out_path, style, **options)


__all__ = ["FrameStylizer", "output_size", "stream_frames", "stylize_frames", "stylize_video", "transcode"]
