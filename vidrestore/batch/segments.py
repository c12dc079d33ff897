"""Restore one input in segments, so an interrupted long film resumes where it stopped.

A segment is a run of source frames. While they are fed, the restorer emits frames (those still
inside its look-ahead come out with the next segment); the emitted frames are encoded into the
segment's own file, and the restorer's complete state (``Restorer.get_state()``) is written
beside it. The next segment, in this process or in another after a crash, starts from that
snapshot and a reader positioned exactly after the last fed frame (by pts), so its output is
what an uninterrupted run would have emitted. Segments of one input therefore run one after
another; different inputs run in parallel.

Nothing here touches the job database: a :class:`SegmentWorker` returns records and the driver
commits them (one writer).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from ..concurrency import BackgroundSink, prefetch
from ..errors import CheckpointError, OutputError, SourceError, UsageError
from ..faces.options import FaceOptions
from ..io import VideoReader, VideoWriter, WriterOptions, probe
from ..io.digest import sha256_file
from ..io.frame import Frame
from ..io.paths import write_bytes_atomic, write_text_atomic
from ..io.probe import VideoInfo
from ..io.writer import encoder_pix_fmt
from ..restore.options import RestoreOptions
from .fixity import FrameSum, sequence_files, sha256_tree
from .interlace import (
    FILTERS,
    Weaver,
    deinterlace,
    preroll,
    resolve_mode,
    split_fields,
    top_field_first,
)
from .jobs import SegmentRecord
from .options import CODEC_TABLE, INTRA_CODECS, BatchOptions

if TYPE_CHECKING:
    from ..models import CodeFormer, RestorerDescriptor
    from ..weights import WeightStore

log = logging.getLogger(__name__)

SEQUENCE_PATTERN = "{name}_%07d{suffix}"
_SEGMENT_IMAGE = "f_%07d{suffix}"
# Pixel formats FFV1 encodes, for lossless segments in the output's own format.
_FFV1_FORMATS = frozenset(f.name for f in av.codec.Codec("ffv1", "w").video_formats)


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

    @property
    def out_info(self) -> VideoInfo:
        """The source facts the output is written with (progressive after deinterlacing)."""
        if self.mode in FILTERS:
            return dataclasses.replace(self.info, field_order="progressive")
        return self.info


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
    return Plan(info, mode, top, seg, join, fps)


# -- files of a job's work folder -------------------------------------------------------------
def segment_path(spec: JobSpec, plan: Plan, idx: int) -> Path:
    work = Path(spec.work_dir)
    if plan.join == "images":
        return work / f"seg_{idx:05d}"
    if plan.join == "encode":
        return work / f"seg_{idx:05d}.mkv"
    return work / f"seg_{idx:05d}{Path(spec.output).suffix}"


def _manifest_path(seg: Path) -> Path:
    return seg.with_name(seg.name.split(".")[0] + ".json")


def _state_path(seg: Path) -> Path:
    return seg.with_name(seg.name.split(".")[0] + ".state")


def clear_segment_files(spec: JobSpec, idx: int) -> None:
    """Remove whatever an interrupted computation of segment ``idx`` left behind."""
    work = Path(spec.work_dir)
    if not work.is_dir():
        return
    stem = f"seg_{idx:05d}"
    for p in work.iterdir():
        if p.name.startswith((stem, f".{stem}")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def tree_or_file_digest(path: Path) -> str:
    if path.is_dir():
        return sha256_tree(sequence_files(path), path)[0]
    return sha256_file(path)


@dataclass
class Manifest:
    """Per-segment facts that do not belong in the database: every emitted frame's pts, its
    framemd5 line where it can be known from the segment, the faces restored so far."""

    pts: list[int]
    sums: list[FrameSum] | None
    faces_restored: dict[int, int]

    def dump(self) -> str:
        return json.dumps({
            "pts": self.pts,
            "sums": None if self.sums is None else [dataclasses.asdict(s) for s in self.sums],
            "faces_restored": {str(k): v for k, v in self.faces_restored.items()},
        })

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            sums = None if d["sums"] is None else [FrameSum(**s) for s in d["sums"]]
            return cls(list(d["pts"]), sums, {int(k): v for k, v in d["faces_restored"].items()})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: unreadable segment manifest ({exc})") from exc


def manifest_of(rec: SegmentRecord) -> Manifest:
    if rec.path is None:
        return Manifest([], [], {})
    return Manifest.load(_manifest_path(Path(rec.path)))


def segment_intact(rec: SegmentRecord) -> bool:
    """True when a finished segment's file, manifest and snapshot are still as recorded."""
    try:
        if rec.path is not None:
            seg = Path(rec.path)
            if not seg.exists() or tree_or_file_digest(seg) != rec.hash:
                return False
            if len(manifest_of(rec).pts) != rec.out_frames:
                return False
        if rec.state_path is not None:
            state = Path(rec.state_path)
            if not state.is_file() or sha256_file(state) != rec.state_hash:
                return False
    except (OSError, CheckpointError):
        return False
    return True


# -- computing segments -----------------------------------------------------------------------
class SegmentWorker:
    """Holds one loaded network and face detector, and computes segments of any job with them.

    One per process (or per Ray actor): the model is loaded once, every job gets a fresh
    :class:`~vidrestore.restore.pipeline.Restorer` around it.
    """

    def __init__(self, restore: RestoreOptions, faces: FaceOptions, *, name: str = "local",
                 model: RestorerDescriptor | CodeFormer | None = None, detector: Any = None,
                 store: WeightStore | None = None) -> None:
        from ..faces import create_detector
        from ..models import load_restorer, resolve_device
        from ..restore.engine import as_descriptor
        from ..weights import WeightStore

        self.name = name
        self.store = store if store is not None else WeightStore.from_env()
        device = resolve_device(restore.device)
        #: The network every job's restorer shares.
        self.model = as_descriptor(model) if model is not None else load_restorer(
            restore.weights, device=device, dtype=restore.dtype, store=self.store)
        self.detector = detector if detector is not None else create_detector(
            faces.detector, faces, device=str(device), store=self.store)

    def restorer(self, spec: JobSpec) -> Any:
        from ..restore.pipeline import Restorer

        return Restorer(spec.restore, spec.faces, model=self.model, detector=self.detector,
                        store=self.store)

    def compute(self, spec: JobSpec, plan: Plan, idx: int,
                prev: SegmentRecord | None) -> SegmentRecord:
        """Compute segment ``idx`` of a job, resuming from ``prev`` (the segment before it)."""
        t0 = time.perf_counter()
        Path(spec.work_dir).mkdir(parents=True, exist_ok=True)
        clear_segment_files(spec, idx)
        restorer = self.restorer(spec)
        restorer.rotation = plan.info.rotation  # faces are restored upright
        pending = None
        if prev is not None:
            state = load_state(prev)
            restorer.set_state(state["restorer"], what=f"{prev.state_path}")
            pending = state["weave"]
        first = 0 if prev is None else prev.first_frame + (prev.frames or 0)
        out_first = 0 if prev is None else (prev.out_first or 0) + (prev.out_frames or 0)
        seg = segment_path(spec, plan, idx)
        per = 2 if plan.mode == "fields" else 1
        fed = _Counter(per)
        sink = _SegmentSink(spec, plan, seg, out_first, pending)
        with contextlib.ExitStack() as stack:
            stack.callback(sink.abort)
            frames = stack.enter_context(
                stage_frames(spec, plan, first, None if prev is None else prev.last_pts))
            part: Iterable[Frame] = frames
            if plan.segment_frames:
                part = islice(frames, plan.segment_frames * per)
            # decoding, restoring and encoding overlap, as in a single pass
            writer: BackgroundSink[Frame] = BackgroundSink(sink.put, size=4, name="segment")
            with writer:
                for out in restorer.process(fed.count(prefetch(part, 4, "reader")),
                                            final=False):
                    writer.put(out)
                more = next(frames, None) is not None
                if not more:
                    for out in restorer.process((), final=True):
                        writer.put(out)
            if fed.frames == 0:
                raise SourceError(f"{spec.source}: no frame after pts {prev and prev.last_pts}")
            state_path = state_hash = None
            if more:
                blob = dumps_segment_state(restorer.get_state(), sink.pending)
                state_path = _state_path(seg)
                write_bytes_atomic(state_path, blob)
                state_hash = hashlib.sha256(blob).hexdigest()
            path, digest = sink.close(restorer.faces_restored)
            stack.pop_all()
        return SegmentRecord(
            job_id=spec.job_id, idx=idx, first_frame=first, frames=fed.frames,
            last_pts=fed.last_pts, out_first=out_first, out_frames=sink.count, final=not more,
            path=None if path is None else str(path), hash=digest,
            state_path=None if state_path is None else str(state_path), state_hash=state_hash,
            status="done", seconds=time.perf_counter() - t0, worker=self.name)


class _Counter:
    """Counts source frames fed and remembers the pts of the last one."""

    def __init__(self, per: int) -> None:
        self.per = per
        self.pictures = 0
        self.last_pts: int | None = None

    @property
    def frames(self) -> int:
        return self.pictures // self.per

    def count(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        for f in frames:
            self.pictures += 1
            self.last_pts = f.pts // self.per if self.per == 2 else f.pts
            yield f


@contextlib.contextmanager
def stage_frames(spec: JobSpec, plan: Plan, first: int, after_pts: int | None
                 ) -> Iterator[Iterator[Frame]]:
    """The pictures the restorer gets from source frame ``first`` on (after pts ``after_pts``):
    source frames re-numbered from ``first``, deinterlaced or split into fields as planned."""
    pre = preroll(plan.mode) if after_pts is not None else 0
    start = None
    if after_pts is not None:
        pts0 = after_pts + (0 if pre else 1)
        start = Fraction(pts0 - plan.info.start_pts) * plan.info.time_base
    reader = VideoReader(spec.source, start=start,
                         fps=plan.fps if spec.kind == "sequence" else None)
    with reader:
        frames = (Frame(first - pre + i, f.pts, f.time_base, f.pixels, source=f.source)
                  for i, f in enumerate(reader))
        if plan.mode in FILTERS:
            yield deinterlace(frames, plan.mode, top_first=plan.top_first, drop=pre)
        elif plan.mode == "fields":
            yield split_fields(frames, top_first=plan.top_first)
        else:
            yield frames


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
    return dataclasses.replace(info, path=None, other_streams=(), is_sequence=False)  # type: ignore[arg-type]


class _SegmentSink:
    """Weaves fields if needed and encodes a segment's emitted frames (opened on the first)."""

    def __init__(self, spec: JobSpec, plan: Plan, seg: Path, out_first: int,
                 pending: Frame | None) -> None:
        self.spec, self.plan, self.seg = spec, plan, seg
        self.expected = out_first
        self.count = 0
        self.pts: list[int] = []
        self.weaver = Weaver(top_first=plan.top_first, pending=pending) \
            if plan.mode == "fields" else None
        self._writer: VideoWriter | None = None

    @property
    def pending(self) -> Frame | None:
        return None if self.weaver is None else self.weaver.pending

    def put(self, frame: Frame) -> None:
        if self.weaver is not None:
            woven = self.weaver.push(frame)
            if woven is None:
                return
            frame = woven
        if frame.index != self.expected:
            raise OutputError(f"{self.spec.source}: restorer emitted frame {frame.index}, "
                              f"expected {self.expected}")
        if self._writer is None:
            dst = self.seg
            if self.plan.join == "images":
                dst = self.seg / _SEGMENT_IMAGE.format(suffix=self.spec.batch.suffix)
            self._writer = VideoWriter(dst, source=video_only(self.plan.out_info),
                                       options=segment_writer_options(self.spec, self.plan))
        self._writer.write(frame)
        self.pts.append(frame.pts)
        self.expected += 1
        self.count += 1

    def close(self, faces_restored: dict[int, int]) -> tuple[Path | None, str | None]:
        if self._writer is None:
            return None, None
        self._writer.close()
        self._writer = None
        sums = None
        if self.spec.batch.framemd5 and self.plan.join == "copy":
            sums = _video_sums(self.seg)
        elif self.spec.batch.framemd5 and self.plan.join == "images":
            sums = _image_sums(sequence_files(self.seg))
        if sums is not None and len(sums) != self.count:
            raise OutputError(f"{self.seg}: holds {len(sums)} frames, {self.count} were written")
        manifest = Manifest(self.pts, sums, dict(faces_restored))
        write_text_atomic(_manifest_path(self.seg), manifest.dump())
        return self.seg, tree_or_file_digest(self.seg)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


def _video_sums(path: Path) -> list[FrameSum]:
    from .fixity import video_framemd5

    return list(video_framemd5(path).frames)


def _image_sums(files: list[Path]) -> list[FrameSum]:
    from .fixity import sequence_framemd5

    return list(sequence_framemd5(files).frames)


def dumps_segment_state(restorer_state: bytes, weave: Frame | None) -> bytes:
    """A segment's snapshot: the restorer's state and the field the weaver holds back."""
    from ..restore.snapshot import dumps

    return dumps({"restorer": restorer_state, "weave": weave}, ())


def snapshot_problem(rec: SegmentRecord) -> str | None:
    """Why the snapshot after segment ``rec`` cannot be resumed from (None: it can)."""
    from ..restore.pipeline import snapshot_types
    from ..restore.snapshot import check

    try:
        check(load_state(rec)["restorer"], snapshot_types(), what=str(rec.state_path))
    except CheckpointError as exc:
        return str(exc)
    return None


def load_state(rec: SegmentRecord) -> dict[str, Any]:
    """The snapshot taken after segment ``rec``, checked against its recorded hash and read
    as data (:mod:`vidrestore.restore.snapshot`)."""
    from ..restore.snapshot import SnapshotError, loads

    if rec.state_path is None:
        raise CheckpointError(f"segment {rec.idx} of job {rec.job_id} has no snapshot")
    path = Path(rec.state_path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the snapshot ({exc.strerror})") from exc
    if hashlib.sha256(blob).hexdigest() != rec.state_hash:
        raise CheckpointError(f"{path}: snapshot does not match its recorded SHA-256")
    state = loads(blob, (), what=str(path))
    if (not isinstance(state, dict) or set(state) != {"restorer", "weave"}
            or not isinstance(state["restorer"], bytes)):
        raise SnapshotError(f"{path}: not a segment snapshot")
    return state


