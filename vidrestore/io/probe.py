"""Stream facts of a video source, read once with PyAV and kept in frozen dataclasses.

Colour and field-order values use FFmpeg's names (the ones ``ffprobe`` prints; see
:mod:`.color`), so they can be compared with other tools and mapped back exactly when the
writer tags its output.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from ..errors import SourceError, UsageError
from .color import COLOR_MATRICES, COLOR_PRIMARIES, COLOR_RANGES, COLOR_TRANSFERS, FIELD_ORDERS
from .timecode import parse_time

log = logging.getLogger(__name__)

StreamKind = Literal["audio", "subtitle", "data", "attachment"]

@dataclass(frozen=True)
class StreamInfo:
    """A non-video stream of the source, as the writer will try to carry it."""

    index: int
    kind: StreamKind
    codec: str
    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class VideoInfo:
    """What a source holds, from its header and its first decoded frame.

    ``width``/``height`` are the decoded (stored) size; ``rotation`` is the counter-clockwise
    display rotation from the display matrix. Frames are delivered as stored and the writer
    carries the matrix, which keeps the picture lossless. ``frame_count`` and ``duration``
    come from the header and may be ``None``; ``time_base`` and ``start_pts`` are exact.
    """

    path: Path | None  # None: facts of frames without a file to copy streams from
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    time_base: Fraction
    start_pts: int = 0
    avg_rate: Fraction | None = None
    real_rate: Fraction | None = None
    frame_count: int | None = None
    duration: float | None = None
    rotation: int = 0
    display_matrix: tuple[int, ...] | None = None
    sample_aspect_ratio: Fraction | None = None
    color_range: str = "unknown"
    color_primaries: str = "unknown"
    color_transfer: str = "unknown"
    color_matrix: str = "unknown"
    field_order: str = "unknown"
    stream_index: int = 0
    other_streams: tuple[StreamInfo, ...] = ()
    is_sequence: bool = False

    @property
    def deep(self) -> bool:
        """True when frames come as uint16 (more than 8 bits per component)."""
        return self.bit_depth > 8

    @property
    def end_pts(self) -> int | None:
        """Where the video ends per the header, in ``time_base`` units (``None`` if unknown)."""
        if self.duration is None:
            return None
        return self.start_pts + round(Fraction(self.duration) / self.time_base)


def probe(source: str | os.PathLike[str]) -> VideoInfo:
    """Read the facts of a video file (not an image sequence; see ``VideoReader`` for those).

    Raises :class:`SourceError` when the file is missing, is not a video or cannot be decoded.
    """
    path = Path(source)
    with open_input(path) as container:
        stream = video_stream(container, path)
        first = first_frame(container, stream, path)
        return info_from_stream(path, container, stream, first)


def open_input(path: Path) -> Any:
    """Open a file for demuxing (read-only), with a one-line :class:`SourceError` on failure."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder, not a video (give an image pattern or fps)")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        # FFmpeg's demuxers answer EBUSY to a header whose picture size they refuse
        why = ("its header gives a picture size that cannot be decoded"
               if exc.errno == errno.EBUSY else _reason(exc))
        raise SourceError(f"{path}: not a readable video ({why})") from exc


MAX_PIXELS = 8192 * 8192
"""Largest picture accepted (8K scans fit; a decompression bomb does not get decoded)."""
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "tiff_pipe", "webp_pipe", "bmp_pipe",
                  "dpx_pipe", "exr_pipe", "j2k_pipe", "qoi_pipe", "ppm_pipe", "gif")


def check_size(path: Path, width: int, height: int) -> None:
    """Refuse pictures too large to restore (before any is decoded, where the header says)."""
    if width * height > MAX_PIXELS:
        raise SourceError(f"{path}: {width}x{height} pictures are larger than vidrestore "
                          f"handles ({MAX_PIXELS} pixels, e.g. 8192x8192, at most)")


def video_stream(container: Any, path: Path) -> Any:
    """The first video stream that is not a cover picture (its size checked)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            ctx = stream.codec_context
            check_size(path, ctx.width or 0, ctx.height or 0)
            if container.format.name in _IMAGE_FORMATS and path.suffix.lower() in (
                    ".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".mxf", ".ts", ".mts"):
                log.warning("%s: is a single %s image, not a video; taken as a one-frame "
                            "video", path, container.format.name.removesuffix("_pipe"))
            return stream
    kinds = ", ".join(s.type for s in container.streams) or "no streams"
    raise SourceError(f"{path}: has no video stream (found {kinds})")


def first_frame(container: Any, stream: Any, path: Path) -> Any:
    """Decode the first frame: it alone knows the pixel format, colour tags and rotation."""
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise SourceError(f"{path}: cannot decode video stream {stream.index} "
                          f"({_reason(exc)})") from exc
    raise SourceError(f"{path}: video stream {stream.index} has no decodable frame")


def info_from_stream(path: Path, container: Any, stream: Any, frame: Any) -> VideoInfo:
    """Assemble :class:`VideoInfo` from an open container, its video stream and first frame."""
    check_size(path, frame.width, frame.height)
    ctx = stream.codec_context
    time_base = stream.time_base or Fraction(1, 90000)
    duration = _duration(container, stream, time_base)
    matrix = _display_matrix(frame)
    return VideoInfo(
        path=path,
        container=container.format.name,
        codec=ctx.name,
        width=frame.width,
        height=frame.height,
        pix_fmt=frame.format.name,
        bit_depth=bit_depth(frame.format.name),
        time_base=Fraction(time_base),
        start_pts=stream.start_time if stream.start_time is not None else 0,
        avg_rate=_rate(stream.average_rate),
        real_rate=_rate(stream.base_rate),
        frame_count=stream.frames or None,
        duration=duration,
        rotation=int(frame.rotation) % 360,
        display_matrix=matrix,
        sample_aspect_ratio=_rate(ctx.sample_aspect_ratio),
        color_range=COLOR_RANGES.get(frame.color_range, "unknown"),
        color_primaries=COLOR_PRIMARIES.get(frame.color_primaries, "unknown"),
        color_transfer=COLOR_TRANSFERS.get(frame.color_trc, "unknown"),
        color_matrix=COLOR_MATRICES.get(frame.colorspace, "unknown"),
        field_order=FIELD_ORDERS.get(ctx.field_order, "unknown"),
        stream_index=stream.index,
        other_streams=tuple(_stream_info(s) for s in container.streams if s is not stream),
    )


def _duration(container: Any, stream: Any, time_base: Fraction) -> float | None:
    """The video stream's own duration: header field, Matroska tag, or the file's if alone.

    FFmpeg's Matroska muxer writes a track's DURATION tag as its end time (the last frame's
    end, counted from 0), so a track that starts late has the start taken off; mkvmerge's
    statistics tags (marked by _STATISTICS_WRITING_APP) hold the duration itself.
    """
    if stream.duration is not None:
        return float(stream.duration * time_base)
    tag = stream.metadata.get("DURATION")
    if tag:
        try:
            value = float(parse_time(tag))
        except UsageError:
            log.debug("ignoring unreadable DURATION tag %r", tag)
        else:
            if "_STATISTICS_WRITING_APP" in stream.metadata or not stream.start_time:
                return value
            return max(0.0, value - float(stream.start_time * time_base))
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def bit_depth(pix_fmt: str) -> int:
    """Bits per component of a pixel format (8 for yuv420p, 10 for yuv420p10le, ...)."""
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    data = frame.side_data.get(SideDataType.DISPLAYMATRIX)
    if data is None:
        return None
    return tuple(int(v) for v in np.frombuffer(bytes(data), dtype="<i4")[:9])


def _rate(value: Fraction | None) -> Fraction | None:
    return Fraction(value) if value else None


def _stream_info(stream: Any) -> StreamInfo:
    kind: StreamKind = stream.type if stream.type != "video" else "attachment"
    codec = stream.codec_context.name if stream.codec_context is not None else _codec_name(stream)
    return StreamInfo(
        index=stream.index,
        kind=kind,
        codec=codec,
        language=stream.metadata.get("language"),
        title=stream.metadata.get("title"),
    )


def _codec_name(stream: Any) -> str:
    try:
        return stream.codec.name
    except (AttributeError, av.FFmpegError):
        return "unknown"


def _reason(exc: Exception) -> str:
    """FFmpeg's own words for an error, without the repeated file name."""
    return getattr(exc, "strerror", None) or str(exc)
