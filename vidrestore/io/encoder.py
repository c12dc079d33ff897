"""The container side of writing a video: the encoder and its settings, the other streams
copied beside it, the temporary file moved into place when complete.

:class:`~.writer.VideoWriter` decides what each frame's time is; :class:`Encoder` turns those
frames into packets in the output's codec, pixel format and colour tags (the codec policy:
:func:`encoder_pix_fmt`, the encoder options) and muxes them with the copied streams.
"""

from __future__ import annotations

import contextlib
import logging
import math
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
from av.video.reformatter import VideoReformatter

from ..errors import OutputError, StreamCopyError, UsageError
from .codecs import (
    ALSO_HOLDS,
    CODEC_IDS,
    ENCODERS,
    PRORES_PROFILES,
    check_pix_fmt,
    containers_for,
    muxer_for,
    pick_pix_fmt,
)
from .color import (
    COLOR_MATRICES,
    COLOR_PRIMARIES,
    COLOR_RANGES,
    COLOR_TRANSFERS,
    FIELD_ORDERS,
    code_of,
    from_rgb_args,
    output_matrix,
    output_range,
    rgb_frame,
)
from .frame import Frame, patch_box
from .patch import on_chroma_grid, patch_picture, patch_with, patchable
from .paths import AtomicOutput, check_output
from .probe import VideoInfo
from .streamcopy import StreamCopier, StreamNote, Window

if TYPE_CHECKING:
    from .writer import WriterOptions

log = logging.getLogger(__name__)


class Encoder:
    """The container side of a :class:`~.writer.VideoWriter`: the encoder, the stream copier,
    the temporary file."""

    def __init__(self, dst: Path, info: VideoInfo, options: WriterOptions, *,
                 starts_late: bool) -> None:
        check_output(dst, [info.path] if info.path and not info.is_sequence else [],
                     overwrite=options.overwrite)
        self.info = info
        self.count = 0
        self.notes: list[StreamNote] = []
        self._copier: StreamCopier | None = None
        self._target = AtomicOutput(dst, overwrite=options.overwrite)
        try:
            self._out = av.open(str(self._target.tmp), mode="w", format=muxer_for(dst))
        except (av.FFmpegError, ValueError) as exc:
            self._target.discard()
            raise OutputError(f"{dst}: cannot write {dst.suffix or 'suffix-less'!r} files "
                              f"({exc}); use .mp4, .mov, .mkv or an image pattern such as "
                              "frame_%06d.png") from exc
        if (muxer_for(dst) == "matroska" and info.avg_rate and info.real_rate
                and info.avg_rate != info.real_rate and 1000 % info.time_base.denominator):
            log.warning("%s: Matroska keeps times to the millisecond, so this variable-rate "
                        "video's timing is rounded to 1 ms (.mov or .mp4 keep it exact)", dst)
        try:
            self._stream = self._add_video(dst, options)
            pix_fmt = self._stream.codec_context.pix_fmt
            assert pix_fmt is not None  # _add_video chose one
            self._convert = from_rgb_args(info, pix_fmt)
            self._to_yuv = VideoReformatter()
            self._to_yuv_boxes = VideoReformatter()  # boxes of other sizes: its own cache
            self._durations: dict[int, int] = {}  # pts -> duration of frames in the encoder
            self._end = 0  # where the latest frame ends, in time base units
            self._first_pts: int | None = None
            self._first_dts: int | None = None
            self._fields = _field_marker(info, pix_fmt)
            if info.path and not info.is_sequence:
                self._copier = StreamCopier(info, self._out, self._stream,
                                            strict=options.strict_streams,
                                            starts_late=starts_late, dst=dst)
                self.notes = self._copier.notes
            self._out.options.update(_movie_timescale(self._out))
            self._out.start_encoding()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, (av.FFmpegError, ValueError)) and not isinstance(
                    exc, (UsageError, StreamCopyError)):
                raise OutputError(f"{dst}: cannot start encoding ({exc})") from exc
            raise

    def _add_video(self, dst: Path, options: WriterOptions) -> av.VideoStream:
        info = self.info
        codec = _codec(options)
        encoder = ENCODERS[codec]
        if self._out.format.name == "image2":
            raise UsageError(f"{dst}: one image cannot hold a video; for an image sequence give "
                             f"a numbered pattern such as {dst.stem}_%06d{dst.suffix}, or a "
                             "folder")
        held = self._out.supported_codecs | ALSO_HOLDS.get(self._out.format.name, frozenset())
        if CODEC_IDS[codec] not in held:
            raise UsageError(f"{dst}: {self._out.format.name} cannot hold {codec} video; "
                             f"use {containers_for(codec)}")
        rate = info.avg_rate or info.real_rate or Fraction(25)
        # a video encoder's stream is a video stream
        stream = cast("av.VideoStream", self._out.add_stream(
            encoder, rate=rate, options=_encoder_options(codec, options)))
        ctx = stream.codec_context
        stream.time_base = info.time_base
        ctx.time_base = info.time_base
        ctx.width, ctx.height = info.width, info.height
        ctx.pix_fmt = encoder_pix_fmt(info, options)
        check_pix_fmt(encoder, ctx.pix_fmt, dst)
        ctx.thread_count = options.encoder_threads
        if codec == "h264":
            # PyAV asks for slice threads, which makes x264 slice each frame instead of using
            # its frame threads, the ffmpeg CLI's choice: smaller files at the same speed.
            ctx.thread_type = "FRAME"
        if info.sample_aspect_ratio:
            ctx.sample_aspect_ratio = info.sample_aspect_ratio
        ctx.color_range = code_of(COLOR_RANGES, output_range(info, ctx.pix_fmt))
        ctx.color_primaries = code_of(COLOR_PRIMARIES, info.color_primaries)
        ctx.color_trc = code_of(COLOR_TRANSFERS, info.color_transfer)
        ctx.colorspace = code_of(COLOR_MATRICES, output_matrix(info, ctx.pix_fmt))
        if _interlaced(info):
            ctx.field_order = code_of(FIELD_ORDERS, info.field_order)
            if codec == "h264":
                ctx.flags |= av.codec.context.Flags.interlaced_dct | \
                    av.codec.context.Flags.interlaced_me
        if codec == "h265" and self._out.format.name in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # the tag Apple players require
        if info.display_matrix:
            stream.set_display_matrix(info.display_matrix)
        return stream

    def begin(self, window: Window) -> None:
        if self._copier is not None:
            self._copier.start(window)

    def _picture(self, frame: Frame) -> Any:
        """The frame in the encoder's format: the decoder's own picture when it is already in
        that format (nothing changed it, or only the boxes of :attr:`Frame.changed`, which are
        converted back into a copy of it: :mod:`.patch`), else the RGB pixels converted back."""
        src, ctx = frame.source, self._stream.codec_context
        if (src is not None and src.format.name == ctx.pix_fmt and src.width == ctx.width
                and src.height == ctx.height):
            if frame.changed is None:
                # Decoded frames carry their picture type, which encoders obey as an order.
                src.pict_type = av.video.frame.PictureType.NONE
                return src
            patches = frame.patches
            if patches is not None and patchable(src, self._convert) and all(
                    on_chroma_grid(patch_box(p), src) for p in patches):
                # the boxes alone exist in RGB (Frame.with_patches): they are what changed
                return patch_with(src, patches, self._convert, self._to_yuv_boxes)
            patched = patch_picture(src, frame.pixels, frame.changed, self._convert,
                                    self._to_yuv_boxes)
            if patched is not None:
                return patched
        return self._to_yuv.reformat(rgb_frame(frame.pixels), **self._convert)

    def put(self, frame: Frame, pts: int, duration: int) -> None:
        video = self._picture(frame)
        video.pts = pts
        video.time_base = self.info.time_base
        if self._fields is not None:
            self._fields.push(video)
            video = self._fields.pull()
        video.duration = duration
        try:
            self._durations[pts] = duration
            self._end = max(self._end, pts + duration)
            if self._first_pts is None:
                self._first_pts = pts
            self._mux(self._stream.encode(video))
            if self._copier is not None:
                self._copier.copy_until(frame.pts * self.info.time_base)
        except av.FFmpegError as exc:
            raise OutputError(f"{self._target.dst}: encoding frame {frame.index} failed "
                              f"({exc})") from exc
        self.count += 1

    def _mux(self, packets: list[Any], *, final: bool = False) -> None:
        """Mux encoded packets with their frame's own duration (encoders assume 1/rate).

        MP4/MOV add up durations in decode order, which starts before the first pts when frames
        are reordered; the last packet's duration is chosen so that the sum is the length.
        """
        for packet in packets:
            if self._first_dts is None:
                self._first_dts = packet.dts
            duration = self._durations.pop(packet.pts, None)
            if duration is not None:
                packet.duration = duration
        if final and packets and self._out.format.name in ("mp4", "mov"):
            last = packets[-1]
            if (last.dts is not None and self._first_dts is not None
                    and self._first_pts is not None):
                length = self._end - self._first_pts
                last.duration = max(1, length - (last.dts - self._first_dts))
        self._out.mux(packets)

    def finish(self) -> None:
        try:
            self._mux(self._stream.encode(None), final=True)
            if self._copier is not None:
                self._copier.copy_until(None)
                self._copier.close()
            self._out.close()
        except av.FFmpegError as exc:
            raise OutputError(f"{self._target.dst}: finishing the file failed ({exc})") from exc

    def commit(self) -> None:
        self._target.commit()

    def abort(self) -> None:
        if self._copier is not None:
            self._copier.close()
        with contextlib.suppress(av.FFmpegError, ValueError, OSError):
            self._out.close()  # the partial file is removed next
        self._target.discard()


def _movie_timescale(out: Any) -> dict[str, str]:
    """MP4/MOV edit lists count in the movie time scale, 1/1000 s unless told otherwise; a scale
    that divides evenly into every stream's keeps B-frame delays, AAC priming and padding, and
    a range's audio offset exact."""
    if out.format.name not in ("mp4", "mov"):
        return {}
    scale = 1
    for stream in out.streams:
        if stream.time_base:
            scale = math.lcm(scale, stream.time_base.denominator)
    if scale <= 1000 or scale >= 2**31:
        return {}
    return {"movie_timescale": str(scale)}


def _encoder_options(codec: str, options: WriterOptions) -> dict[str, str]:
    if codec in ("h264", "h265"):
        opts = {"crf": str(options.crf), "preset": options.preset}
        if codec == "h265":
            opts["x265-params"] = "log-level=error"
        return opts
    if codec == "ffv1":
        return {"level": "3", "slicecrc": "1", "g": "1"}
    return {"profile": str(PRORES_PROFILES[options.prores_profile]), "vendor": "apl0"}


def _codec(options: WriterOptions) -> str:
    """The video codec written: ``auto`` is H.264."""
    return "h264" if options.codec == "auto" else options.codec


def encoder_pix_fmt(info: VideoInfo, options: WriterOptions) -> str:
    """The pixel format a :class:`VideoWriter` with ``options`` encodes ``info``'s video in."""
    codec = _codec(options)
    return options.pix_fmt or pick_pix_fmt(ENCODERS[codec], info, codec, options.prores_profile)


def _interlaced(info: VideoInfo) -> bool:
    return info.field_order in ("tt", "bb", "tb", "bt")


def _field_marker(info: VideoInfo, pix_fmt: str) -> Any:
    """A filter graph that marks frames interlaced in the source's field order, or ``None``.

    Encoders read the field order from each frame, and frames built from arrays carry none.
    """
    if not _interlaced(info):
        return None
    graph = av.filter.Graph()
    src = graph.add_buffer(width=info.width, height=info.height, format=av.VideoFormat(pix_fmt),
                           time_base=info.time_base)
    mark = graph.add("setfield", "tff" if info.field_order in ("tt", "tb") else "bff")
    sink = graph.add("buffersink")
    src.link_to(mark)
    mark.link_to(sink)
    graph.configure()
    return graph

