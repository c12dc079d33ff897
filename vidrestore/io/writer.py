"""Re-encode frames into a video file that keeps the source's timing, format and other streams.

Frames arrive with the source's pts and time base and leave with them (re-based to 0 only for
a ``start``/``end`` range), so variable frame rates, frame counts and durations survive. Audio,
subtitles, chapters and tags are copied packet for packet by :class:`StreamCopier`. The file is
written under a temporary name in the destination folder and renamed into place only when it
is complete; on any error (``KeyboardInterrupt`` included) nothing is left at the destination.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import av

from ..errors import OutputError, UsageError
from ..options import opt, validate
from .codecs import (
    CODECS,
    PRESETS,
    PRORES_PROFILES,
)
from .encoder import Encoder
from .frame import Frame
from .probe import VideoInfo, probe
from .sequence import SequenceWriter, is_sequence
from .streamcopy import StreamNote, Window
from .timecode import TimeValue, parse_time

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class WriterOptions:
    """How the output video is encoded. Other streams are always copied, never re-encoded."""

    codec: str = opt("auto", "video codec: auto is H.264 (mp4/mov/mkv); ffv1 is lossless "
                     "(mkv); prores is for mov", choices=CODECS, flag="--video-codec")
    crf: int = opt(18, "H.264/H.265 quality, lower is better", min=0, max=51)
    preset: str = opt("medium", "H.264/H.265 speed preset", choices=PRESETS)
    prores_profile: str = opt("hq", "ProRes profile (4444 keeps full chroma)",
                              choices=tuple(PRORES_PROFILES))
    pix_fmt: str | None = opt(None, "output pixel format; default follows the source "
                              "(10-bit sources stay 10-bit)")
    strict_streams: bool = opt(False, "fail instead of warning when an audio, subtitle or "
                               "data stream cannot be carried into the output container")
    overwrite: bool = opt(False, "replace an existing output file")
    encoder_threads: int = opt(0, "video encoder threads (0 picks one per core)", min=0, max=64)

    def __post_init__(self) -> None:
        validate(self)
        if self.pix_fmt is not None:
            try:
                av.VideoFormat(self.pix_fmt)
            except (ValueError, TypeError):
                raise UsageError(f"--pix-fmt: {self.pix_fmt!r} is not a pixel format (e.g. "
                                 "yuv420p, yuv422p10le, rgb48le)") from None


@dataclass(frozen=True)
class WriteReport:
    """What a finished write produced."""

    path: Path
    frames: int
    not_carried: tuple[StreamNote, ...]


class VideoWriter:
    """Encodes :class:`Frame` records into ``dst``, a video file or an image sequence.

    The file appears at ``dst`` when the writer is closed (``commit=False``: when
    :meth:`commit` is called after that); until then it is a hidden temporary beside it.

    ``source`` is the :class:`VideoInfo` of the input (or its path): size, pixel format,
    colour tags, rotation, time base and the streams to copy come from it. ``start``/``end``
    must be the values given to the reader; they re-base the output to 0 and cut the copied
    streams to the range (packet-accurate: audio packets whose start lies in the range).
    """

    def __init__(
        self,
        dst: str | os.PathLike[str],
        *,
        source: VideoInfo | str | os.PathLike[str],
        options: WriterOptions | None = None,
        start: TimeValue | None = None,
        end: TimeValue | None = None,
        commit: bool = True,
    ) -> None:
        self.options = options or WriterOptions()
        self._commit = commit
        self.info = source if isinstance(source, VideoInfo) else probe(source)
        self.dst = Path(dst)
        self._ranged = start is not None or end is not None
        self._end = None if end is None else parse_time(end, rate=self.info.avg_rate, name="end")
        # only a cut that starts after the beginning moves the start timecode
        late = start is not None and parse_time(start, rate=self.info.avg_rate, name="start") > 0
        self._last: Frame | None = None
        self._interval: int | None = None
        self._shift = 0
        self.report: WriteReport | None = None
        self._sink: Encoder | SequenceWriter
        if is_sequence(self.dst):
            unused = [flag for flag, value, default in (
                ("--video-codec", self.options.codec, "auto"),
                ("--pix-fmt", self.options.pix_fmt, None)) if value != default]
            if unused:  # the image format follows the file suffix, its depth the source
                log.warning("%s: %s not used for image sequences (the suffix picks the format)",
                            self.dst, " and ".join(unused))
            self._sink = SequenceWriter(self.dst, self.info, overwrite=self.options.overwrite,
                                        strict=self.options.strict_streams)
        else:
            self._sink = Encoder(self.dst, self.info, self.options, starts_late=late)

    @property
    def not_carried(self) -> tuple[StreamNote, ...]:
        """Source streams the output cannot hold (also logged as warnings)."""
        return tuple(self._sink.notes)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: Frame) -> None:
        """Queue one frame; it is encoded once the next one (or the end) fixes its duration.

        Frames in another time base than the source's are moved to it (nearest tick).
        """
        tb = self.info.time_base
        if frame.time_base != tb:
            frame = Frame(frame.index, round(frame.pts * frame.time_base / tb), tb, frame.pixels)
        w, h = frame.size
        if (w, h) != (self.info.width, self.info.height):
            raise UsageError(f"frame {frame.index} is {w}x{h}; {self.dst} is "
                             f"{self.info.width}x{self.info.height}")
        last = self._last
        if last is None:
            self._shift = frame.pts if self._ranged else 0
            self._sink.begin(self._window(frame))
        else:
            if frame.pts <= last.pts:
                raise UsageError(f"frame {frame.index} pts {frame.pts} does not follow "
                                 f"pts {last.pts}; frames must come in presentation order")
            self._interval = frame.pts - last.pts
            self._sink.put(last, last.pts - self._shift, self._interval)
        self._last = frame

    def close(self) -> WriteReport:
        """Encode the held frame, flush, copy the remaining streams and move the file in place.

        Returns (and keeps in :attr:`report`) what was written; a second call returns it again.
        """
        if self.report is not None:
            return self.report
        try:
            if self._last is None:
                raise OutputError(f"{self.dst}: no frames were written; nothing to save")
            last = self._last
            self._sink.put(last, last.pts - self._shift, self._last_duration(last))
            self._sink.finish()
            if self._commit:
                self._sink.commit()
        except BaseException:
            self.abort()
            raise
        self.report = WriteReport(self.dst, self._sink.count, self.not_carried)
        return self.report

    def commit(self) -> None:
        """Move a writer made with ``commit=False`` into place, once it is closed (a run with
        side outputs commits them after its main output, so a failed main output leaves
        none of them behind)."""
        if self.report is None:
            raise OutputError(f"{self.dst}: not finished; nothing to commit")
        self._sink.commit()

    def discard(self) -> None:
        """:meth:`abort`, also after :meth:`close` when the writer was made with
        ``commit=False``."""
        self.abort()

    def abort(self) -> None:
        """Drop everything written so far; nothing is left at the destination."""
        self._sink.abort()

    def _window(self, first: Frame) -> Window:
        info = self.info
        tb = info.time_base
        if not self._ranged:
            return Window()
        start_time = info.start_pts * tb
        hi = None if self._end is None else start_time + self._end
        return Window(lo=first.pts * tb, hi=hi, shift=first.pts * tb)

    def _last_duration(self, last: Frame) -> int:
        """The source's own duration for its last frame, else the last frame interval."""
        tb = self.info.time_base
        interval = self._interval
        if interval is None:
            rate = self.info.avg_rate
            interval = max(1, round(1 / (rate * tb))) if rate else 1
        end = self.info.end_pts
        if end is not None and self._end is None and 0 < end - last.pts <= 2 * interval:
            return end - last.pts
        return interval
