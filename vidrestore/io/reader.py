"""Streaming frame reader for video files (PyAV, optionally decord) and image sequences.

Frames come one at a time with exact integer pts in the stream's time base; only the decoder's
own look-ahead is held in memory, whatever the length. Pixels are RGB ``uint8``, or ``uint16``
when the source has more than 8 bits per component. Frames are delivered as stored: a phone
video's rotation stays in :attr:`VideoInfo.rotation` / ``display_matrix`` and the writer carries
it into the output, which keeps the picture lossless and the restored output displayed the
same way as the source.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from itertools import chain
from math import ceil
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import SourceError, UsageError
from .color import to_rgb
from .frame import Frame
from .probe import VideoInfo, info_from_stream, open_input, video_stream
from .region import PictureRegions, supports_regions
from .sequence import SequenceSource, is_sequence
from .timecode import TimeValue, parse_time

log = logging.getLogger(__name__)

Backend = Literal["auto", "pyav", "decord"]
BACKENDS = ("auto", "pyav", "decord")
_REORDER = 32  # more packets than any decoder holds back, for presentation order from packets


class VideoReader:
    """Iterate over the frames of a video file or an image sequence.

    ``start``/``end`` (seconds, ``[HH:]MM:SS[.fff]`` or ``120f``) select the frames whose time
    from the video's start lies in ``[start, end)``; their pts are kept as in the source (the
    writer re-bases). ``fps`` is required for image sequences and refused for video files,
    whose own timestamps are always used. A truncated or damaged file raises
    :class:`SourceError` unless ``allow_partial`` is set, which logs a warning and keeps the
    decodable frames. ``exact_rgb=False`` converts 8-bit video with swscale's fast path: about
    12 ms less CPU per 1080p frame, but RGB values about 0.7 code values too dark.

    Frames decoded by PyAV keep the decoder's picture as :attr:`Frame.source`, which the writer
    encodes as it is when nobody replaced the pixels. ``lazy_rgb`` defers the RGB conversion to
    the first use of :attr:`Frame.pixels`, for readers whose frames may pass through untouched.

    ``backend``: ``"pyav"`` (and ``"auto"``) decode with PyAV; ``"decord"`` uses decord for the
    pixels of 8-bit BT.601 sources and refuses others. ``benchmarks/bench_io.py`` measured
    decord slower than PyAV's fast path, so ``"auto"`` never picks it.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        backend: Backend = "auto",
        start: TimeValue | None = None,
        end: TimeValue | None = None,
        fps: TimeValue | None = None,
        allow_partial: bool = False,
        threads: int = 0,
        exact_rgb: bool = True,
        lazy_rgb: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise UsageError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        path = Path(source)
        self._source: _PyAVSource | _DecordSource | SequenceSource
        if is_sequence(path):
            if fps is None:
                raise UsageError(f"{path}: an image sequence needs its frame rate (fps, --fps)")
            if backend == "decord":
                raise UsageError(f"{path}: the decord backend reads video files only")
            self._source = SequenceSource(path, parse_fps(fps))
        else:
            if fps is not None:
                raise UsageError(f"{path}: fps applies to image sequences only; video files "
                                 "keep their own timestamps")
            if backend == "decord":
                self._source = _DecordSource(path, threads, allow_partial)
            else:
                self._source = _PyAVSource(path, threads, allow_partial, exact_rgb)
        try:
            self.info: VideoInfo = self._source.info
            rate = self.info.avg_rate
            self.start = None if start is None else parse_time(start, rate=rate, name="start")
            self.end = None if end is None else parse_time(end, rate=rate, name="end")
            self._check_range()
        except BaseException:
            self.close()
            raise
        self._started = False
        self._lazy = lazy_rgb

    def _check_range(self) -> None:
        start, end, duration = self.start, self.end, self.info.duration
        if start is not None and end is not None and end <= start:
            raise UsageError(f"end {float(end):.3f} s is not after start {float(start):.3f} s")
        if start is not None and duration is not None and start >= duration:
            raise UsageError(f"start {float(start):.3f} s is past the end of {self.info.path} "
                             f"({duration:.3f} s)")

    @property
    def expected_frames(self) -> int | None:
        """How many frames iteration will give: the header's count for a whole file; for a
        range, an estimate from the average rate (exact for constant-rate video)."""
        info = self.info
        if self.start is None and self.end is None:
            return info.frame_count
        rate = info.avg_rate
        length = None if info.duration is None else Fraction(repr(info.duration))
        end = self.end if self.end is not None else length
        if not rate or end is None:
            return None
        if length is not None:
            end = min(end, length)
        return max(0, ceil(end * rate) - ceil((self.start or 0) * rate))

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the file; safe to call twice."""
        self._source.close()

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise UsageError(f"{self.info.path}: a VideoReader is read once; open a new one")
        self._started = True
        info = self.info
        tb = info.time_base
        lo = None if self.start is None else info.start_pts + ceil(self.start / tb)
        hi = None if self.end is None else info.start_pts + ceil(self.end / tb)
        last = None
        index = 0
        for pts, picture in self._source.frames(lo, hi):
            if last is not None and pts <= last:
                log.warning("%s: frame %d has pts %d after %d; moved to %d to keep order",
                            info.path, index, pts, last, last + 1)
                pts = last + 1
            if isinstance(picture, np.ndarray):
                yield Frame(index, pts, tb, picture)
            else:  # a decoder picture: only the PyAV source hands those over
                src = cast(_PyAVSource, self._source)
                analysis = src.analysis(picture)
                if self._lazy:
                    yield Frame(index, pts, tb, source=picture, convert=src.to_rgb,
                                analysis=analysis, region=src.region_converter(picture))
                else:
                    yield Frame(index, pts, tb, src.to_rgb(picture), source=picture,
                                analysis=analysis)
            last = pts
            index += 1
        if index == 0:
            raise SourceError(f"{info.path}: no frame in the requested range")


def parse_fps(fps: TimeValue) -> Fraction:
    """A frame rate given as 24, 29.97 or "30000/1001", exactly; a usage error if it is none."""
    try:
        rate = Fraction(str(fps)) if isinstance(fps, str) else Fraction(fps)
    except (ValueError, ZeroDivisionError) as exc:
        raise UsageError(f"fps: {fps!r} is not a number (30, 29.97, 30000/1001)") from exc
    if rate <= 0:
        raise UsageError(f"fps: {fps!r} must be positive")
    return rate


class _PyAVSource:
    """Decodes one video stream with FFmpeg's threaded decoders."""

    def __init__(self, path: Path, threads: int, allow_partial: bool,
                 exact_rgb: bool = True) -> None:
        self.path = path
        self.allow_partial = allow_partial
        self._container = open_input(path)
        try:
            stream = video_stream(self._container, path)
            for other in self._container.streams:
                if other is not stream:
                    other.discard = av.stream.Discard.all
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            self._stream = stream
            self._decoded = self._decode()
            first = next(self._decoded, None)
            if first is None:
                raise SourceError(f"{path}: video stream {stream.index} has no decodable frame")
            self._first = first
            self.info = info_from_stream(path, self._container, stream, self._first)
            self._exact = exact_rgb
            self._to_rgb = VideoReformatter()
            self._to_analysis = VideoReformatter()
            self._regions = PictureRegions()
            self._check_index()
        except BaseException:
            self._container.close()
            raise

    def _check_index(self) -> None:
        """Catch a cut-off MP4/MOV before decoding: its index points past the end of the file."""
        entries = self._stream.index_entries
        if not len(entries):
            return
        needed = max(e.pos + e.size for e in entries)
        size = self.path.stat().st_size
        if needed > size:
            self._damaged(f"is truncated: its index needs {needed} bytes, the file has {size}")

    def _damaged(self, what: str) -> None:
        if not self.allow_partial:
            raise SourceError(f"{self.path}: {what} (allow_partial keeps the decodable frames)")
        log.warning("%s: %s; keeping the decodable frames", self.path, what)

    def _decode(self) -> Iterator[Any]:
        """Decoded frames in presentation order, until the end or damage."""
        try:
            for packet in self._container.demux(self._stream):
                yield from packet.decode()
        except av.FFmpegError as exc:
            self._damaged(f"cannot be decoded to the end ({getattr(exc, 'strerror', exc)})")

    def to_rgb(self, picture: Any) -> np.ndarray:
        """A decoded picture of this stream as RGB pixels."""
        return to_rgb(self._to_rgb, picture, deep=self.info.deep, exact=self._exact)

    def analysis(self, picture: Any) -> np.ndarray | None:
        """The fast conversion faces are found and followed in, where the pixels are the
        exact (eight times costlier) one; None where the pixels are converted the fast way."""
        if self.info.deep or not self._exact:
            return None
        return to_rgb(self._to_analysis, picture, deep=False, exact=False)

    def region_converter(self, picture: Any) -> PictureRegions | None:
        """What converts boxes of ``picture`` exactly as :meth:`to_rgb` converts it whole
        (None where only the whole picture's conversion is exact)."""
        if self.info.deep or not self._exact or not supports_regions(picture):
            return None
        return self._regions

    def frames(self, lo: int | None, hi: int | None) -> Iterator[tuple[int, Any]]:
        """(pts, decoded picture) in presentation order within ``[lo, hi)``."""
        pending = [self._first]
        if lo is not None and self._first.pts is not None and lo > self._first.pts:
            self._container.seek(lo, stream=self._stream, backward=True)
            pending = []
        last_pts, last_duration = None, 0
        for frame in chain(pending, self._decoded):
            if frame.pts is not None:
                pts = frame.pts
            else:  # a stream without timestamps: continue from the previous frame
                pts = 0 if last_pts is None else last_pts + max(last_duration, 1)
            if lo is not None and pts < lo:
                continue
            if hi is not None and pts >= hi:
                return
            last_pts, last_duration = pts, frame.duration or 0
            yield pts, frame
        if last_pts is not None:
            self._check_end(last_pts + last_duration)

    def _check_end(self, reached: int) -> None:
        """A cut-off file decodes without error but stops well before its header's end."""
        info = self.info
        end = info.end_pts
        if end is None:
            return
        tb = info.time_base
        interval = 1 / (info.avg_rate * tb) if info.avg_rate else Fraction(1, 10) / tb
        if reached < end - 3 * interval:
            self._damaged(f"is truncated or damaged: video stops at "
                          f"{float((reached - info.start_pts) * tb):.3f} s of "
                          f"{info.duration:.3f} s")

    def close(self) -> None:
        self._container.close()


def decord_problem(info: VideoInfo) -> str | None:
    """Why decord would alter this source's pictures, or ``None`` when it reads them as PyAV does.

    decord converts to 8-bit RGB with the BT.601 matrix and limited range whatever the tags say.
    """
    if info.deep:
        return f"it keeps 8 of the {info.bit_depth} bits"
    if info.color_matrix not in ("unknown", "bt470bg", "smpte170m"):
        return f"it ignores the {info.color_matrix} colour matrix"
    if info.color_range == "pc" or info.pix_fmt.startswith("yuvj"):
        return "it ignores full-range levels"
    return None


class _DecordSource:
    """decord decodes the pixels (8-bit BT.601 sources); PyAV supplies the exact pts."""

    def __init__(self, path: Path, threads: int, allow_partial: bool) -> None:
        try:
            import decord
        except ImportError as exc:
            raise UsageError("backend 'decord' needs the decord package (pip install decord)"
                             ) from exc
        self._times = _PyAVSource(path, threads, allow_partial)
        self.info = self._times.info
        problem = decord_problem(self.info)
        if problem:
            self._times.close()
            raise UsageError(f"{path}: decord cannot read it faithfully: {problem} "
                             "(use backend='pyav')")
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
        except decord.DECORDError as exc:
            self._times.close()
            raise SourceError(f"{path}: decord cannot open it ({exc})") from exc
        self._error = decord.DECORDError

    def _presentation_pts(self) -> Iterator[int]:
        """Packet pts in presentation order, from demuxing alone (no decoding)."""
        container, stream = self._times._container, self._times._stream
        container.seek(self.info.start_pts, stream=stream, backward=True)
        heap: list[int] = []
        for packet in container.demux(stream):
            if packet.pts is None or packet.is_discard:
                continue
            heapq.heappush(heap, packet.pts)
            if len(heap) > _REORDER:
                yield heapq.heappop(heap)
        while heap:
            yield heapq.heappop(heap)

    def frames(self, lo: int | None, hi: int | None) -> Iterator[tuple[int, np.ndarray]]:
        reader = self._reader
        times = self._presentation_pts()
        position = 0
        first = None
        for pts in times:
            if lo is None or pts >= lo:
                first = pts
                break
            position += 1
        try:
            if position:
                reader.seek_accurate(position)
            for pts in chain([] if first is None else [first], times):
                if position >= len(reader) or (hi is not None and pts >= hi):
                    return
                yield pts, reader.next().asnumpy()
                position += 1
        except self._error as exc:
            raise SourceError(f"{self.info.path}: decord failed at frame {position} "
                              f"({exc})") from exc

    def close(self) -> None:
        self._times.close()
