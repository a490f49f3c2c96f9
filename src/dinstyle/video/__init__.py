"""Video: frames streamed through the model with one style code (``pipeline``), steadied over time (``temporal``).

``stylize_frames(stylizer, frames, style)`` and ``stylize_video(stylizer, in_path, out_path, style)`` are the
entry points (see docs/VIDEO.md); video files themselves are read and written by ``dinstyle.io.videofiles``.
"""
from .pipeline import FrameStylizer, output_size, stylize_frames, stylize_video

__all__ = ["FrameStylizer", "output_size", "stylize_frames", "stylize_video"]
