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
import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..concurrency import BackgroundSink, prefetch
from ..errors import OutputError, SourceError
from ..faces.options import FaceOptions
from ..io import VideoReader, VideoWriter
from ..io.frame import Frame
from ..io.paths import write_bytes_atomic, write_text_atomic
from ..restore.options import RestoreOptions
from ..upscale.model import LANCZOS, load_background
from .fixity import FrameSum, sequence_files
from .interlace import (
    FILTERS,
    Weaver,
    deinterlace,
    preroll,
    split_fields,
)
from .jobs import SegmentRecord
from .plan import SEGMENT_IMAGE, JobSpec, Plan, segment_writer_options, video_only
from .workfiles import (
    Manifest,
    clear_segment_files,
    dumps_segment_state,
    load_state,
    manifest_path,
    segment_path,
    snapshot_path,
    tree_or_file_digest,
)

if TYPE_CHECKING:
    from ..models import CodeFormer, RestorerDescriptor
    from ..weights import WeightStore

log = logging.getLogger(__name__)


# -- computing segments -----------------------------------------------------------------------
class SegmentWorker:
    """Holds one loaded network and face detector, and computes segments of any job with them.

    One per process (or per Ray actor): the models are loaded once (the background model
    too, for ``--background``), every job gets a fresh
    :class:`~vidrestore.restore.pipeline.Restorer` around them.
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
            restore.weights, device=device, dtype=restore.dtype, runtime=restore.runtime,
            compile=restore.compile,
            store=self.store)
        self.detector = detector if detector is not None else create_detector(
            faces.detector, faces, device=str(device), store=self.store)
        self.background = None if restore.background == LANCZOS else load_background(
            restore.background, device=self.model.device, store=self.store)

    def restorer(self, spec: JobSpec) -> Any:
        from ..restore.pipeline import Restorer

        return Restorer(spec.restore, spec.faces, model=self.model, detector=self.detector,
                        store=self.store, background=self.background)

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
            stack.callback(restorer.close)
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
                state_path = snapshot_path(seg)
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
                         fps=plan.fps if spec.kind == "sequence" else None,
                         lazy_rgb=(plan.mode not in FILTERS and plan.mode != "fields"
                                   and spec.restore.upscale == 1))
    with reader:
        frames = (f.renumbered(first - pre + i) for i, f in enumerate(reader))
        if plan.mode in FILTERS:
            yield deinterlace(frames, plan.mode, top_first=plan.top_first, drop=pre)
        elif plan.mode == "fields":
            yield split_fields(frames, top_first=plan.top_first)
        else:
            yield frames


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
                dst = self.seg / SEGMENT_IMAGE.format(suffix=self.spec.batch.suffix)
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
        write_text_atomic(manifest_path(self.seg), manifest.dump())
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
