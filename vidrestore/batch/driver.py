"""Run a batch: register the inputs in the job database, decide what to do, do it.

The driver (this module) is the only writer of the database. Jobs run one after another here,
or on Ray workers (:mod:`.ray_runner`) with the same :class:`~.job.JobRun` bookkeeping."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import BatchConfig
from .decide import Decision, apply_decision, decide
from .fixity import write_fixity
from .job import Events, JobRun, SourceHasher, finalize
from .jobs import DB_NAME, Job, JobDB, SegmentRecord
from .lock import batch_running, open_batch
from .segments import SegmentWorker
from .sources import Source, expand_sources

log = logging.getLogger(__name__)



@dataclass
class BatchResult:
    """What a run ended with: every job's final row."""

    jobs: list[Job]  # the jobs of this run's sources
    ran: int  # jobs started (retries included)

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed



def prepare(sources: Sequence[Source], config: BatchConfig, db: JobDB,
            events: Events) -> tuple[list[Job], list[int]]:
    """Register every input (:func:`expand_sources`' list); return the jobs this run should
    process, in order, and the ids of every job the sources name."""
    if db.rebase(config.out_dir):
        events(f"{config.out_dir}: the batch folder was moved; its records follow it")
    db.check_paths()
    db.requeue_interrupted()
    todo: list[Job] = []
    ids: list[int] = []
    for d in decide(sources, config, db):
        job = apply_decision(db, d, config)
        ids.append(job.id)
        if d.error is not None:
            events(f"{d.source.path}: {job.error_class}: {job.error_message}")
        elif d.runs:
            todo.append(job)
        else:
            events(f"{d.action} {d.source.path}: {d.reason}")
            if d.verified and _restore_sidecars(d.output, config):
                events(f"{d.output}: missing fixity sidecars written again")
    return todo, ids


def _restore_sidecars(output: Path, config: BatchConfig) -> bool:
    """Write the fixity sidecars of a verified output again if one was deleted."""
    wanted = [".sha256"] + ([".framemd5"] if config.batch.framemd5 else [])
    if all(output.with_name(output.name + s).is_file() for s in wanted):
        return False
    write_fixity(output, framemd5=config.batch.framemd5)
    return True


@contextlib.contextmanager
def begin(sources: Sequence[str | os.PathLike[str]], config: BatchConfig, say: Events
          ) -> Iterator[tuple[JobDB, list[Job], list[int]]]:
    """The opened batch folder with every input registered: ``(db, jobs to run, ids of every
    job the sources name)``. Sources are read before anything is written, and a run refused
    while registering (a database naming paths outside the folder) leaves the folder as it
    was found."""
    found = expand_sources(sources, skip=config.out_dir)
    with open_batch(config.out_dir) as (db, undo):
        try:
            queue, ids = prepare(found, config, db, say)
        except BaseException:
            undo()
            raise
        yield db, queue, ids


def run_batch(sources: Sequence[str | os.PathLike[str]], config: BatchConfig, *,
              events: Events | None = None, worker: SegmentWorker | None = None) -> BatchResult:
    """Restore every input of ``sources`` into ``config.out_dir``, resuming earlier runs.

    Returns every job's final row; a failed job does not stop the others.
    """
    say = events or (lambda msg: log.info("%s", msg))
    with begin(sources, config, say) as (db, queue, ids):
        hasher = SourceHasher()
        ran = 0
        try:
            while queue:
                job = db.job(queue.pop(0).id)
                hasher.submit(job)
                if worker is None:
                    worker = SegmentWorker(config.restore, config.faces)
                done = run_job_locally(db, job, config, worker, hasher, say)
                ran += 1
                if done.status == "failed" and done.failures <= config.batch.retries:
                    db.requeue(done.id)
                    queue.append(done)
        finally:
            hasher.close()
        return BatchResult([db.job(i) for i in ids], ran)



def run_job_locally(db: JobDB, job: Job, config: BatchConfig, worker: SegmentWorker,
                    hasher: SourceHasher, say: Events) -> Job:
    """All remaining segments of one job in this process, then the join."""
    run = JobRun(db, job, config, worker=worker.name)
    try:
        run.begin()
        assert run.plan is not None
        say(f"job {job.id}: {job.source} -> {job.output}"
            + (f" (resuming after segment {len(run.segments) - 1})" if run.segments else ""))
        while not run.complete:
            idx, prev = run.next_segment()
            rec = worker.compute(run.spec, run.plan, idx, prev)
            run.segment_done(rec)
            say(f"job {job.id}: segment {idx}: frames {rec.first_frame}-"
                f"{rec.first_frame + (rec.frames or 0) - 1} in {rec.seconds or 0:.1f} s")
        done = run.finish(finalize(run.spec, run.plan, run.segments), hasher)
        say(f"job {job.id}: done, {done.frames} frames -> {done.output}")
        return done
    except Exception as exc:  # one bad input fails alone; the batch goes on
        failed = run.fail(exc)
        say(f"job {job.id}: failed: {failed.error_class}: {failed.error_message}")
        return failed


def dry_run(sources: Sequence[str | os.PathLike[str]], config: BatchConfig) -> list[Decision]:
    """What a run would do, without writing anything."""
    db = JobDB(config.out_dir, create=False) if (config.out_dir / DB_NAME).is_file() else None
    try:
        return decide(expand_sources(sources, skip=config.out_dir), config, db)
    finally:
        if db is not None:
            db.close()



def status(out_dir: Path) -> tuple[list[Job], dict[int, list[SegmentRecord]]]:
    """Every job of a batch folder and its segments (read only).

    A job left ``running`` by a run that was killed shows as ``pending``, which is what the
    next run makes of it, once no run holds the folder.
    """
    with JobDB(Path(out_dir), create=False) as db:
        jobs = db.jobs()
        segments = {j.id: db.segments(j.id) for j in jobs}
    if not batch_running(Path(out_dir)):
        jobs = [dataclasses.replace(j, status="pending") if j.status == "running" else j
                for j in jobs]
    return jobs, segments


