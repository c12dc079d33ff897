"""Hosts that feed frames to the library from outside a video file: raw frame pipes.

(The ComfyUI node pack lives in ``plugins/comfyui`` and imports the library like any user.)
"""

from __future__ import annotations

from .rawpipe import (
    PIX_FMTS,
    PipeSummary,
    RawFormat,
    RawFrameReader,
    frame_to_bytes,
    read_frames,
    run_pipe,
    stream_latency,
    stream_options,
)

__all__ = [
    "PIX_FMTS",
    "PipeSummary",
    "RawFormat",
    "RawFrameReader",
    "frame_to_bytes",
    "read_frames",
    "run_pipe",
    "stream_latency",
    "stream_options",
]
