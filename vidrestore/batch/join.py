"""Join a job's segments into its output, as if it had been written in one pass.

* ``copy`` (FFV1, ProRes: every frame coded on its own): the video packets of all segments are
  remuxed in order, untouched, and audio, subtitles, chapters and tags are copied from the
  source by the io module's :class:`~vidrestore.io.streamcopy.StreamCopier`, as the writer does
  in a single pass. Frame payloads and pts are those of an uninterrupted run.
* ``encode`` (H.264/H.265, whose frames refer to each other across a seam): segments hold
  lossless RGB, decoded here and encoded once through :class:`~vidrestore.io.VideoWriter`, so
  the encoder sees exactly the frames of a single pass.
* ``images``: the segments' image files are hard-linked (copied where links are not possible)
  under their final numbers into a temporary folder that is renamed into place.

The output only appears at its path once complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import OutputError
from ..io import VideoWriter
from ..io.codecs import muxer_for
from ..io.frame import Frame
from ..io.paths import AtomicOutput
from ..io.probe import VideoInfo
from ..io.streamcopy import StreamCopier, Window
from .fixity import FrameListing, FrameSum, sequence_files
from .jobs import SegmentRecord
from .plan import SEQUENCE_PATTERN, JobSpec, Plan
from .workfiles import manifest_of

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Joined:
    """A finished output: its path, frame count and the framemd5 known from the segments."""

    output: Path
    frames: int
    listing: FrameListing | None
    faces_restored: dict[int, int]


def check_chain(segments: list[SegmentRecord]) -> None:
    """Refuse a segment list that is not one complete, gap-free run of the input."""
    if not segments:
        raise OutputError("no finished segment to join")
    src = out = 0
    for n, rec in enumerate(segments):
        if rec.idx != n or rec.status != "done":
            raise OutputError(f"job {rec.job_id}: segment {n} is missing or unfinished")
        if rec.first_frame != src or (rec.out_first or 0) != out:
            raise OutputError(f"job {rec.job_id}: segment {n} does not follow segment {n - 1}")
        src += rec.frames or 0
        out += rec.out_frames or 0
        if rec.final != (n == len(segments) - 1):
            raise OutputError(f"job {rec.job_id}: segment {n} final flag is inconsistent")
    if src != out:
        raise OutputError(f"job {segments[0].job_id}: {src} frames were read but {out} came "
                          "out of the restorer")


def join_segments(spec: JobSpec, plan: Plan, segments: list[SegmentRecord]) -> Joined:
    """Write the job's output from its finished segments (see the module docstring)."""
    check_chain(segments)
    dst = Path(spec.output)
    parts = [r for r in segments if r.path is not None and r.out_frames]
    manifests = [manifest_of(r) for r in parts]
    faces = manifest_of(segments[-1]).faces_restored
    sums: list[FrameSum] | None = []
    for m in manifests:
        sums = None if sums is None or m.sums is None else sums + m.sums
    if plan.join == "copy":
        frames = remux([Path(r.path) for r in parts if r.path], plan.out_info, dst,
                       strict=spec.writer.strict_streams)
        listing = _listing(dst, sums)
    elif plan.join == "images":
        frames = link_images([Path(r.path) for r in parts if r.path], dst,
                             SEQUENCE_PATTERN.format(name=dst.name, suffix=spec.batch.suffix))
        listing = None if sums is None else _renumbered(sums)
    else:
        frames = encode(parts, manifests, plan, spec, dst)
        listing = None
    return Joined(dst, frames, listing, faces)


def remux(parts: list[Path], source: VideoInfo, dst: Path, *, strict: bool) -> int:
    """Concatenate the video packets of ``parts`` into ``dst`` and copy ``source``'s other
    streams beside them; returns the number of video packets."""
    target = AtomicOutput(dst, overwrite=True)
    copier: StreamCopier | None = None
    out = None
    try:
        out = av.open(str(target.tmp), mode="w", format=muxer_for(dst))
        with av.open(str(parts[0])) as first:
            template = first.streams.video[0]
            vout = out.add_stream_from_template(template)
            extradata = template.codec_context.extradata
            if template.average_rate:  # the muxer's default frame duration, as in one pass
                vout.codec_context.framerate = template.average_rate
        if source.display_matrix:  # coded side data is not carried by the template
            vout.set_display_matrix(source.display_matrix)
        if source.path and not source.is_sequence:
            copier = StreamCopier(source, out, vout, strict=strict, dst=dst)
        out.start_encoding()
        if copier is not None:
            copier.start(Window())
        count = 0
        for part in parts:
            with av.open(str(part)) as inp:
                stream = inp.streams.video[0]
                if stream.codec_context.extradata != extradata:
                    raise OutputError(f"{part}: codec set-up differs from the first segment's; "
                                      "segments cannot be joined by stream copy")
                for packet in inp.demux(stream):
                    ts = packet.pts if packet.pts is not None else packet.dts
                    if ts is None:
                        continue  # demuxer flush marker
                    when = ts * packet.time_base
                    packet.stream = vout
                    out.mux(packet)
                    count += 1
                    if copier is not None:
                        copier.copy_until(when)
        if copier is not None:
            copier.copy_until(None)
            copier.close()
            copier = None
        out.close()
        out = None
        target.commit()
    except av.FFmpegError as exc:
        _abandon(target, out, copier)
        raise OutputError(f"{dst}: joining the segments failed ({exc})") from exc
    except BaseException:
        _abandon(target, out, copier)
        raise
    return count


def _abandon(target: AtomicOutput, out: object, copier: StreamCopier | None) -> None:
    if copier is not None:
        copier.close()
    if out is not None:
        with contextlib.suppress(av.FFmpegError, ValueError, OSError):
            out.close()  # type: ignore[attr-defined]
    target.discard()


def _listing(dst: Path, sums: list[FrameSum] | None) -> FrameListing | None:
    """framemd5 of a joined output from its segments' checksums: the payloads are the
    segments', the timestamps are read back from the output's packets (the muxer may shift
    them, e.g. to keep an audio track's priming samples at time zero)."""
    if sums is None:
        return None
    with av.open(str(dst)) as c:
        s = c.streams.video[0]
        ctx = s.codec_context
        timing: list[tuple[int, int]] = []  # (pts, duration) of the packets with payload
        for p in c.demux(s):
            if p.size:
                if p.pts is None:
                    raise OutputError(f"{dst}: a video packet has no timestamp")
                timing.append((p.pts, p.duration or 1))
        sar, tb = ctx.sample_aspect_ratio, s.time_base
        if tb is None:
            raise OutputError(f"{dst}: the video stream has no time base")
        head = (Fraction(tb), ctx.width, ctx.height, ctx.pix_fmt or "",
                Fraction(sar) if sar else Fraction(1, 1))
    if len(timing) != len(sums):
        raise OutputError(f"{dst}: holds {len(timing)} video packets, segments {len(sums)}")
    frames = tuple(FrameSum(0, pts, pts, dur, s.size, s.md5)
                   for (pts, dur), s in zip(timing, sums, strict=True))
    return FrameListing(*head, frames)


def _renumbered(sums: list[FrameSum]) -> FrameListing | None:
    frames = tuple(FrameSum(0, n, n, 1, s.size, s.md5) for n, s in enumerate(sums))
    return None if not frames else FrameListing(Fraction(1), 0, 0, "", Fraction(1, 1), frames)


def link_images(parts: list[Path], dst: Path, pattern: str) -> int:
    """Number the images of every segment folder in order into the folder ``dst``."""
    if dst.exists():
        _remove_own_sequence(dst, pattern)
    target = AtomicOutput(dst, overwrite=True, folder=True)
    count = 0
    try:
        for part in parts:
            for image in sequence_files(part):
                count += 1
                name = target.tmp / (pattern % count)
                try:
                    os.link(image, name)
                except OSError:
                    shutil.copy2(image, name)
        target.commit()
    except BaseException:
        target.discard()
        raise
    return count


def _remove_own_sequence(dst: Path, pattern: str) -> None:
    """Remove an output folder left by an earlier attempt (only if it holds only our images)."""
    if not dst.is_dir():
        raise OutputError(f"{dst}: exists and is not a folder; move it away")
    head = pattern.split("%")[0]
    strangers = [p for p in dst.iterdir() if not p.name.startswith(head)]
    if strangers:
        raise OutputError(f"{dst}: holds files that are not this batch's ({strangers[0].name}); "
                          "move them away")
    shutil.rmtree(dst)


def _to_rgb(rgb: str, video: Any) -> np.ndarray:
    return np.ascontiguousarray(video.to_ndarray(format=rgb))


def encode(parts: list[SegmentRecord], manifests: list, plan: Plan, spec: JobSpec,
           dst: Path) -> int:
    """Decode the lossless segments and encode them once, with the source's other streams."""
    info = plan.out_info
    rgb = "rgb48le" if info.deep else "rgb24"
    writer = VideoWriter(dst, source=info, options=spec.writer)
    index = 0
    try:
        for rec, man in zip(parts, manifests, strict=True):
            with av.open(str(rec.path)) as inp:
                for n, video in enumerate(inp.decode(video=0)):
                    # In the output's own pixel format (see segment_writer_options), the
                    # picture is encoded as it is; else its RGB pixels are.
                    writer.write(Frame(index, man.pts[n], info.time_base, source=video,
                                       convert=partial(_to_rgb, rgb)))
                    index += 1
            if index != sum(len(m.pts) for m in manifests[: parts.index(rec) + 1]):
                raise OutputError(f"{rec.path}: holds fewer frames than recorded")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return index
