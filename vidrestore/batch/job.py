"""One job, as the driver sees it: its plan, its finished segments and their database
rows, the join and fixity at the end, and the input hashing that runs beside it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError, VidrestoreError
from .config import BatchConfig, work_dir
from .fixity import Fixity, write_fixity
from .jobs import Job, JobDB, SegmentRecord
from .join import Joined, join_segments
from .plan import JobSpec, Plan, make_plan
from .report import job_report, report_path, write_report
from .sources import Source, content_hash, fingerprint
from .workfiles import segment_intact, snapshot_problem

log = logging.getLogger(__name__)

Events = Callable[[str], None]
"""Where a run says what it does (one line per event)."""

# -- one job -----------------------------------------------------------------------------------
class JobRun:
    """The driver's side of one job: its spec, plan, finished segments and database rows."""

    def __init__(self, db: JobDB, job: Job, config: BatchConfig, *, worker: str) -> None:
        self.db = db
        self.job = job
        self.config = config
        self.worker = worker
        self.spec = JobSpec(job.id, job.source, job.kind, job.output,
                            str(work_dir(config, job.id)), config.restore, config.faces,
                            config.writer, config.batch)
        self.plan: Plan | None = None
        self.segments: list[SegmentRecord] = []
        self.t0 = time.perf_counter()

    def begin(self) -> None:
        """Probe the input, keep the finished segments that are intact, drop the others."""
        self.db.start(self.job.id, worker=self.worker)
        plan = make_plan(self.spec)
        self.plan = plan
        self.db.set_segment_frames(self.job.id, plan.segment_frames)
        kept: list[SegmentRecord] = []
        same_size = self.job.segment_frames == plan.segment_frames
        if same_size:
            for rec in self.db.segments(self.job.id):
                if rec.status != "done" or not segment_intact(rec):
                    break
                kept.append(rec)
        if kept and kept[-1].state_path is None and not kept[-1].final:
            kept = []  # its snapshot is gone: nothing can follow it
        if kept and kept[-1].state_path is not None:
            problem = snapshot_problem(kept[-1])
            if problem is not None:
                log.warning("%s; %s is restored again from the start", problem,
                            self.job.source)
                kept = []
        if kept:
            log.info("%s: resuming after %d finished segments", self.job.source, len(kept))
        self.db.drop_segments(self.job.id, len(kept), keep_counts=same_size)
        for n, rec in enumerate(kept[:-1]):  # snapshots a killed run had no time to remove
            if rec.state_path:
                self.db.forget_state(rec.job_id, rec.idx)
                Path(rec.state_path).unlink(missing_ok=True)
                kept[n] = dataclasses.replace(rec, state_path=None, state_hash=None)
        if not kept:
            shutil.rmtree(self.spec.work_dir, ignore_errors=True)
        self.segments = kept

    @property
    def complete(self) -> bool:
        return bool(self.segments) and self.segments[-1].final

    def next_segment(self, worker: str | None = None) -> tuple[int, SegmentRecord | None]:
        """The segment to compute next and the one before it; counted as computed once more."""
        idx = len(self.segments)
        prev = self.segments[-1] if self.segments else None
        first = 0 if prev is None else prev.first_frame + (prev.frames or 0)
        self.db.segment_begin(self.job.id, idx, first, worker or self.worker)
        return idx, prev

    def segment_done(self, rec: SegmentRecord) -> None:
        """Record a finished segment; the snapshot before it is no longer needed."""
        self.db.segment_done(rec)
        # the database's row: it counts how often the segment was computed (the worker's
        # record cannot know of computations that a killed run lost)
        rec = next(r for r in self.db.segments(rec.job_id) if r.idx == rec.idx)
        prev = self.segments[-1] if self.segments else None
        self.segments.append(rec)
        if prev is not None and prev.state_path:
            self.db.forget_state(prev.job_id, prev.idx)
            Path(prev.state_path).unlink(missing_ok=True)
            self.segments[-2] = dataclasses.replace(prev, state_path=None, state_hash=None)

    def finish(self, fin: Finished, hasher: SourceHasher) -> Job:
        """Record the output, write its report, remove the work folder.

        If this fails (the source changed while it was restored, the report cannot be
        written), the joined output and its sidecars are removed: no output of a failed job
        is left looking verified.
        """
        try:
            return self._finish(fin, hasher)
        except BaseException:
            remove_output(fin.joined.output)
            raise

    def _finish(self, fin: Finished, hasher: SourceHasher) -> Job:
        assert self.plan is not None
        joined, fixity = fin.joined, fin.fixity
        t0 = time.perf_counter()
        source_hash = hasher.result(self.job)
        hash_wait = time.perf_counter() - t0
        fp = fingerprint(_source(self.job))
        if (fp.size, fp.mtime_ns) != (self.job.size, self.job.mtime_ns):
            raise SourceError(f"{self.job.source}: changed while it was being restored")
        if source_hash is not None:
            self.db.set_input(self.job.id, size=fp.size, mtime_ns=fp.mtime_ns,
                              source_hash=source_hash)
        seconds = time.perf_counter() - self.t0
        info = self.plan.info
        video = {"codec": info.codec, "width": info.width, "height": info.height,
                 "pix_fmt": info.pix_fmt, "bit_depth": info.bit_depth,
                 "field_order": info.field_order, "field_handling": self.plan.mode,
                 "output_field_order": self.plan.out_info.field_order,
                 "join": self.plan.join}
        output = {"path": str(joined.output), "sha256": fixity.digest, "frames": joined.frames,
                  "sha256_sidecar": str(fixity.sha256_sidecar),
                  "framemd5_sidecar": None if fixity.framemd5_sidecar is None
                  else str(fixity.framemd5_sidecar)}
        job = self.db.job(self.job.id)
        report = job_report(job, self.segments, video=video, output=output,
                            faces_restored=joined.faces_restored, seconds=seconds,
                            steps={"join": fin.join_seconds, "fixity": fin.fixity_seconds,
                                   "source_hash_wait": hash_wait})
        write_report(report_path(joined.output), report)
        self.db.finish(self.job.id, frames=joined.frames, output_hash=fixity.digest,
                       faces=sum(joined.faces_restored.values()),
                       tracks=len(joined.faces_restored), seconds=seconds)
        shutil.rmtree(self.spec.work_dir, ignore_errors=True)
        return self.db.job(self.job.id)

    def fail(self, exc: BaseException) -> Job:
        log.warning("%s: failed: %s: %s", self.job.source, type(exc).__name__, exc)
        self.db.fail(self.job.id, exc)
        with contextlib.suppress(OSError):  # a work folder with nothing to resume from
            os.rmdir(self.spec.work_dir)
        return self.db.job(self.job.id)


def _source(job: Job) -> Source:
    return Source(Path(job.source), "sequence" if job.kind == "sequence" else "video")


@dataclass(frozen=True)
class Finished:
    """A joined output with its fixity, and what the two steps took."""

    joined: Joined
    fixity: Fixity
    join_seconds: float
    fixity_seconds: float


def finalize(spec: JobSpec, plan: Plan, segments: list[SegmentRecord]) -> Finished:
    """Join the segments and write the fixity sidecars (runs where the segments are)."""
    t0 = time.perf_counter()
    remove_partials(Path(spec.output))
    joined = join_segments(spec, plan, segments)
    t1 = time.perf_counter()
    fixity = write_fixity(joined.output, framemd5=spec.batch.framemd5, listing=joined.listing)
    if spec.batch.framemd5 and fixity.frames != joined.frames:
        raise VidrestoreError(f"{joined.output}: {fixity.frames} frames decode, "
                              f"{joined.frames} were written")
    return Finished(joined, fixity, t1 - t0, time.perf_counter() - t1)


def remove_output(output: Path) -> None:
    """An output, its fixity sidecars and its report (a job that failed at the end)."""
    for side in (output.with_name(output.name + ".sha256"),
                 output.with_name(output.name + ".framemd5"), report_path(output)):
        side.unlink(missing_ok=True)
    if output.is_dir() and not output.is_symlink():
        shutil.rmtree(output, ignore_errors=True)
    else:
        output.unlink(missing_ok=True)


def remove_partials(output: Path) -> None:
    """Temporary files of an output that a killed process left behind."""
    if not output.parent.is_dir():
        return
    stem = output.stem if output.suffix else output.name
    for p in output.parent.glob(f".{stem}.partial-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)



class SourceHasher:
    """SHA-256 of the inputs in a background thread while restoration runs."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hash")
        self._futures: dict[int, Future[str]] = {}

    def submit(self, job: Job) -> None:
        if job.source_hash is None and job.id not in self._futures:
            self._futures[job.id] = self._pool.submit(content_hash, _source(job))

    def result(self, job: Job) -> str | None:
        fut = self._futures.pop(job.id, None)
        if fut is None:
            return job.source_hash
        try:
            return fut.result()
        except SourceError:
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


