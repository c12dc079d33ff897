"""Carry a source's audio, subtitle, data and attachment streams into an output, unchanged.

Packets are copied as they are (no decoding, byte-identical payloads), together with the
streams' language, title and disposition, the container's tags and its chapters. Whether the
output container can hold a stream is tried up front on an empty in-memory file of the same
format, so a refusal is known (and reported, or raised when strict) before any frame is
encoded. Packets are pulled from the source as the video advances, so the muxer can interleave
them and memory stays bounded whatever the length. A timecode track is carried as the video's
``timecode`` tag, from which MOV/MP4 muxers write a new one.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any

import av

from ..errors import StreamCopyError
from .probe import VideoInfo, open_input

log = logging.getLogger(__name__)

# Tags that describe the old file rather than its content; the muxer writes fresh ones.
_STALE_TAGS = frozenset({
    "encoder", "major_brand", "minor_version", "compatible_brands", "duration",
    "number_of_frames", "number_of_bytes",
})


def fresh_tags(tags: dict[str, str]) -> dict[str, str]:
    """Container or stream tags worth carrying (content tags, not statistics of the old file)."""
    return {k: v for k, v in tags.items()
            if k.lower() not in _STALE_TAGS and not k.startswith("_STATISTICS")}


@dataclass(frozen=True)
class StreamNote:
    """A source stream the output does not carry, and why."""

    index: int
    kind: str
    codec: str
    reason: str

    def __str__(self) -> str:
        return f"stream {self.index} ({self.kind} {self.codec}) not carried: {self.reason}"


@dataclass(frozen=True)
class Window:
    """Which source times are copied and how far they move: ``[lo, hi)`` minus ``shift`` (s)."""

    lo: Fraction | None = None
    hi: Fraction | None = None
    shift: Fraction = Fraction(0)


class StreamCopier:
    """Copies every carriable non-video stream of ``source`` into ``output``.

    The re-encoded ``video`` stream of the output receives the source video's tags.
    """

    def __init__(self, source: VideoInfo, output: Any, video: Any, *, strict: bool,
                 starts_late: bool = False, dst: Path | None = None) -> None:
        self.notes: list[StreamNote] = []
        self._map: dict[int, Any] = {}
        if source.path is None:
            raise ValueError("StreamCopier needs a source file to copy streams from")
        self._input = open_input(source.path)
        try:
            self._plan(source, output, video, starts_late)
            if strict and self.notes:
                # named by the destination, not by the temporary file being written
                raise StreamCopyError(f"{dst or output.name}: "
                                      + "; ".join(map(str, self.notes)))
        except BaseException:
            self._input.close()
            raise
        for note in self.notes:
            log.warning("%s: %s", source.path, note)
        self._output = output
        self._window = Window()
        self._packets: Iterator[Any] = iter(())
        self._pending: Any = None
        self._held: dict[int, Any] = {}  # input stream index -> its latest packet

    def _plan(self, source: VideoInfo, output: Any, video: Any, starts_late: bool) -> None:
        output.metadata.update(fresh_tags(dict(self._input.metadata)))
        fmt = output.format.name
        for stream in self._input.streams:
            if stream.index == source.stream_index:
                video.metadata.update(fresh_tags(dict(stream.metadata)))
                video.disposition = stream.disposition
                if starts_late and video.metadata.pop("timecode", None):
                    self.notes.append(StreamNote(stream.index, "video", "timecode",
                                                 "a start timecode does not fit a cut"))
                continue
            kind, codec = stream.type, _codec(stream)
            if kind == "data" and "timecode" in stream.metadata:
                continue  # MOV/MP4 muxers write the timecode track from the video's tag
            reason = _refusal(fmt, stream)
            if reason:
                self.notes.append(StreamNote(stream.index, kind, codec, reason))
            elif kind == "attachment":
                output.add_attachment(stream.name or f"attachment{stream.index}",
                                      stream.mimetype or "application/octet-stream", stream.data)
            else:
                copy = output.add_stream_from_template(stream)
                copy.metadata.update(fresh_tags(dict(stream.metadata)))
                copy.disposition = stream.disposition
                self._map[stream.index] = copy

    def start(self, window: Window) -> None:
        """Begin reading packets inside ``window``; call once, before the first frame."""
        self._window = window
        if self._map and window.lo is not None:
            # a second early: audio interleaved ahead of the video keyframe is not skipped
            early = max(Fraction(0), window.lo - 1)
            self._input.seek(floor(early * av.time_base), backward=True)
        wanted = [self._input.streams[i] for i in self._map]
        for stream in self._input.streams:
            if stream.index not in self._map:
                stream.discard = av.stream.Discard.all
        self._packets = self._input.demux(*wanted) if wanted else iter(())
        self._copy_chapters()

    def copy_until(self, until: Fraction | None) -> None:
        """Mux every packet whose source time is at most ``until``; ``None`` copies the rest.

        Each stream's latest packet is held back until the next one, so that the very last one
        can still be fitted to the stream's end when everything is copied.
        """
        lo, hi = self._window.lo, self._window.hi
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                break
            if packet.dts is None and packet.pts is None:
                continue  # demuxer flush marker
            t = _time(packet)
            if until is not None and t > until:
                self._pending = packet
                return
            if (lo is not None and t < lo) or (hi is not None and t >= hi):
                continue
            self._mux(packet)
        if until is None:
            self._release_held()

    def _mux(self, packet: Any) -> None:
        shift = self._window.shift
        if shift:
            offset = round(shift / packet.time_base)
            if packet.pts is not None:
                packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
        index = packet.stream_index
        held = self._held.get(index)
        self._held[index] = packet
        if held is not None:
            self._send(index, held)

    def _send(self, index: int, packet: Any) -> None:
        packet.stream = self._map[index]
        self._output.mux(packet)

    def _release_held(self) -> None:
        """Mux each stream's last packet; for a whole-file copy, end it where the source does.

        An MP4 edit list can end a track inside its last packet (AAC padding); the last
        packet's duration is trimmed to that end so the copy keeps the source's length.
        """
        whole = self._window.lo is None and self._window.hi is None
        for index, packet in self._held.items():
            stream = self._input.streams[index]
            if whole and stream.duration and packet.pts is not None and packet.duration:
                rest = (stream.start_time or 0) + stream.duration - packet.pts
                if 0 < rest < packet.duration:
                    packet.duration = rest
            self._send(index, packet)
        self._held.clear()

    def _copy_chapters(self) -> None:
        lo, hi, shift = self._window.lo, self._window.hi, self._window.shift
        chapters: list[dict[str, Any]] = []
        for ch in self._input.chapters():
            tb = ch["time_base"]
            start, end = ch["start"] * tb, ch["end"] * tb
            if (hi is not None and start >= hi) or (lo is not None and end <= lo):
                continue
            start, end = max(start, lo or start), min(end, hi or end)
            chapters.append({**ch, "id": len(chapters) + 1, "start": round((start - shift) / tb),
                             "end": round((end - shift) / tb)})
        if chapters:
            self._output.set_chapters(chapters)

    def close(self) -> None:
        self._input.close()


def _time(packet: Any) -> Fraction:
    ts = packet.pts if packet.pts is not None else packet.dts
    return ts * packet.time_base


def _codec(stream: Any) -> str:
    ctx = stream.codec_context
    if ctx is not None:
        return ctx.name
    return stream.metadata.get("mimetype", "none") if stream.type == "attachment" else "none"


def _refusal(fmt: str, stream: Any) -> str | None:
    """Why a container of format ``fmt`` cannot hold ``stream``, or ``None`` when it can."""
    if stream.type == "video":
        pic = stream.disposition & av.stream.Disposition.attached_pic
        return "cover pictures are not carried" if pic else "only the main video is carried"
    if stream.type == "attachment":
        return None if fmt == "matroska" else f"{fmt} cannot hold attachments (use .mkv)"
    probe_file = io.BytesIO()
    try:
        with av.open(probe_file, mode="w", format=fmt) as trial:
            trial.add_stream_from_template(stream)
            trial.start_encoding()
    except (ValueError, av.FFmpegError) as exc:
        return f"{fmt} cannot hold {_codec(stream)} ({_short(exc)})"
    return None


def _short(exc: Exception) -> str:
    return (getattr(exc, "strerror", None) or str(exc)).rstrip(".")
