"""Video and image-sequence input/output that keeps timing, picture format and other streams.

``VideoReader`` yields :class:`Frame` records with exact pts; ``VideoWriter`` re-encodes them
with the same pts and copies audio, subtitles, chapters and tags from the source. PyAV time
arithmetic stays inside this package.
"""

from __future__ import annotations

from .frame import Frame
from .probe import StreamInfo, VideoInfo, probe
from .reader import BACKENDS, VideoReader
from .streamcopy import StreamNote
from .timecode import parse_time
from .writer import VideoWriter, WriteReport, WriterOptions

__all__ = [
    "BACKENDS",
    "Frame",
    "StreamInfo",
    "StreamNote",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "WriteReport",
    "WriterOptions",
    "parse_time",
    "probe",
]
