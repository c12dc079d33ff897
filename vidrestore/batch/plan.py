"""What a batch job is and how it is processed: the job's specification, its plan (field
handling, segment size, join method, output size) and the writer settings of its output and
segments."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import UsageError
from ..faces.options import FaceOptions
from ..io import VideoReader, WriterOptions, probe
from ..io.encoder import encoder_pix_fmt
from ..io.probe import VideoInfo
from ..restore.options import RestoreOptions
from ..upscale.geometry import check_output_size, scaled_info
from .interlace import (
    FILTERS,
    resolve_mode,
    top_field_first,
)
from .options import CODEC_TABLE, INTRA_CODECS, BatchOptions

log = logging.getLogger(__name__)


SEQUENCE_PATTERN = "{name}_%07d{suffix}"
SEGMENT_IMAGE = "f_%07d{suffix}"
# Pixel formats FFV1 encodes, for lossless segments in the output's own format.
_FFV1_FORMATS = frozenset(f.name for f in av.codec.Codec("ffv1", "w").video_formats or ())



@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run one job (picklable, sent to remote workers)."""

    job_id: int
    source: str
    kind: str
    output: str
    work_dir: str
    restore: RestoreOptions
    faces: FaceOptions
    writer: WriterOptions
    batch: BatchOptions


@dataclass(frozen=True)
class Plan:
    """How a job is processed: the source's facts, the field handling, the segment size."""

    info: VideoInfo
    mode: str  # off, bwdif, yadif, fields
    top_first: bool
    segment_frames: int  # source frames per segment; 0 = the whole input in one segment
    join: str  # copy (stream copy of intra-coded segments), encode (lossless RGB segments
    #            encoded once at the end), images (image files linked into the output folder)
    fps: Fraction | None  # image-sequence sources only
    scale: int = 1  # output size over source size (--upscale)

    @property
    def out_info(self) -> VideoInfo:
        """The source facts the output is written with (progressive after deinterlacing, and
        ``scale`` times larger)."""
        info = scaled_info(self.info, self.scale)
        if self.mode in FILTERS:
            return dataclasses.replace(info, field_order="progressive")
        return info


def writer_options(batch: BatchOptions, base: WriterOptions) -> WriterOptions:
    """The writer options of a batch's outputs: its codec choice on top of ``base``."""
    codec, profile, _ = CODEC_TABLE[batch.codec]
    if not codec:
        return dataclasses.replace(base, overwrite=True)
    return dataclasses.replace(base, codec=codec, prores_profile=profile, overwrite=True)


def output_path(out_dir: Path, name: str, batch: BatchOptions) -> Path:
    """A job's output: ``DIR/NAME.mkv`` (or .mov/.mp4), or the folder ``DIR/NAME`` of images."""
    return out_dir / (name if batch.is_sequence else name + batch.suffix)


def make_plan(spec: JobSpec) -> Plan:
    """Probe the source and decide field handling, segment size and join method."""
    fps = None
    if spec.kind == "sequence":
        if spec.batch.fps is None:
            raise UsageError(f"{spec.source}: an image sequence needs its frame rate (--fps)")
        with VideoReader(spec.source, fps=spec.batch.fps) as reader:
            info = reader.info
        fps = info.avg_rate
    else:
        info = probe(spec.source)
    mode = resolve_mode(spec.batch.deinterlace, info.field_order)
    if mode != "off" and info.field_order in ("progressive", "unknown"):
        log.warning("%s: field order is %s; --deinterlace %s treats it as top field first",
                    spec.source, info.field_order, mode)
    seg = spec.batch.segment_frames
    if not seg and spec.batch.segment_seconds > 0:
        rate = info.avg_rate or info.real_rate or Fraction(25)
        seg = max(1, round(Fraction(spec.batch.segment_seconds) * rate))
    if spec.batch.is_sequence:
        join = "images"
    else:
        join = "copy" if spec.writer.codec in INTRA_CODECS else "encode"
    top = top_field_first(info.field_order) or info.field_order in ("progressive", "unknown")
    check_output_size(info.width, info.height, spec.restore.upscale)
    return Plan(info, mode, top, seg, join, fps, spec.restore.upscale)


def segment_writer_options(spec: JobSpec, plan: Plan) -> WriterOptions:
    """Segments use the output's codec settings, except that segments of an inter-coded output
    are lossless FFV1, encoded once at the join.

    FFV1 stores them in the output encoder's own pixel format when it can: frames are then
    converted exactly as a single pass converts them, and untouched source pictures go through
    as they are, so the joined file equals the single-pass one. Else lossless RGB.
    """
    if plan.join == "encode":
        fmt = encoder_pix_fmt(plan.out_info, spec.writer)
        if fmt not in _FFV1_FORMATS:
            fmt = "gbrp16le" if plan.info.deep else "bgr0"  # FFV1's lossless RGB forms
        return WriterOptions(codec="ffv1", pix_fmt=fmt, overwrite=True,
                             encoder_threads=spec.writer.encoder_threads)
    return dataclasses.replace(spec.writer, overwrite=True)


def video_only(info: VideoInfo) -> VideoInfo:
    """The source facts without a file to copy other streams from (segments hold video only)."""
    return dataclasses.replace(info, path=None, other_streams=(), is_sequence=False)
