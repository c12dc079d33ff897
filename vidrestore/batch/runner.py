"""Run a batch: register the inputs in the job database, decide what to do, do it.

The driver (this module) is the only writer of the database. Per input it decides: new,
resume (segments already finished), redo (input or options changed, or a finished output no
longer matches its recorded hash), retry (failed before, retries left), skip (done and
verified, or out of retries), or adopt (an input the database does not know whose finished
output and report are already in the folder and verify: a lost database costs no work).
Jobs then run one after another here, or on Ray workers
(:mod:`.ray_runner`) with the same :class:`JobRun` bookkeeping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError, SourceError, UsageError, VidrestoreError
from ..faces.options import FaceOptions
from ..io import WriterOptions
from ..restore.options import RestoreOptions
from .fixity import Fixity, output_digest, write_fixity
from .jobs import DB_NAME, Job, JobDB, SegmentRecord
from .join import Joined, join_segments
from .options import BatchOptions
from .report import REPORT_SCHEMA, job_report, report_path, write_report
from .segments import (
    JobSpec,
    Plan,
    SegmentWorker,
    make_plan,
    output_path,
    segment_intact,
    snapshot_problem,
    writer_options,
)
from .sources import Fingerprint, Source, content_hash, expand_sources, fingerprint

log = logging.getLogger(__name__)

WORK_DIR = ".vidrestore-work"
LOCK_NAME = ".vidrestore-batch.lock"
Events = Callable[[str], None]


ADDED_OPTIONS = {"faces": ("confirm_score",), "restore": ("blend", "track_settings")}
"""Options added after batch folders already existed: they count in a job's options only when
set to something else than their default, so the jobs of an older folder are not redone."""


def _default(group: str, name: str) -> object:
    cls = {"faces": FaceOptions, "restore": RestoreOptions}[group]
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


@dataclass
class BatchConfig:
    """One batch: where outputs go and the options every job uses."""

    out_dir: Path
    restore: RestoreOptions = field(default_factory=RestoreOptions)
    faces: FaceOptions = field(default_factory=FaceOptions)
    writer: WriterOptions = field(default_factory=WriterOptions)
    batch: BatchOptions = field(default_factory=BatchOptions)
    verify_inputs: bool = False  # hash every input again, even when size and mtime agree

    def __post_init__(self) -> None:
        self.out_dir = Path(os.path.abspath(self.out_dir))
        self.writer = writer_options(self.batch, self.writer)

    def options_json(self) -> str:
        """The options that shape an output (segment size, retries and sidecars do not).

        The checkpoint counts by its content, not by how its path is spelled; the device by
        the one ``auto`` picks; the network's batch size not at all (results do not depend on
        how faces are grouped).
        """
        b = self.batch
        restore = dataclasses.asdict(self.restore)
        del restore["batch_size"]
        restore["weights"], restore["device"] = self._model_identity
        data = {"restore": restore,
                "faces": dataclasses.asdict(self.faces),
                "writer": dataclasses.asdict(self.writer),
                "batch": {"codec": b.codec, "deinterlace": b.deinterlace, "fps": b.fps}}
        for group, fields in ADDED_OPTIONS.items():
            for name in fields:
                if data[group][name] == _default(group, name):
                    del data[group][name]
        return json.dumps(data, sort_keys=True)

    def options_hash(self) -> str:
        return hashlib.sha256(self.options_json().encode()).hexdigest()

    @functools.cached_property
    def _model_identity(self) -> tuple[str | None, str]:
        """``sha256:HEX`` of the checkpoint file (None: the verified official one), and the
        device."""
        from ..restore.pipeline import resolve_device

        device = self.restore.device
        if device == "auto":
            device = str(resolve_device(device))
        path = self.restore.weights
        if path is None:
            return None, device
        try:
            with open(path, "rb") as fh:
                return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest(), device
        except OSError:  # the job fails on it later, with the loader's own message
            return path, device


@dataclass(frozen=True)
class Decision:
    """What a run does with one input, and why."""

    source: Source
    action: str  # new, resume, redo, retry, skip, adopt
    reason: str
    output: Path
    job: Job | None = None
    fingerprint: Fingerprint | None = None
    source_hash: str | None = None
    error: VidrestoreError | None = None
    verified: bool = False  # a finished output whose SHA-256 was just checked
    adopted: dict[str, Any] | None = None  # the report of a finished output taken back

    @property
    def runs(self) -> bool:
        return self.action not in ("skip", "adopt")


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


# -- deciding ----------------------------------------------------------------------------------
def decide(sources: Sequence[Source], config: BatchConfig, db: JobDB | None) -> list[Decision]:
    """What to do with each input; reads files and the database, writes nothing."""
    taken = set(db.outputs()) if db is not None else set()
    opts_hash = config.options_hash()
    out: list[Decision] = []
    for src in sources:
        job = db.find(str(src.path)) if db is not None else None
        if job is None:
            found = _adoptable(config, src, taken)
            if found is not None:
                out.append(found)
                taken.add(str(found.output))
                continue
            dst = _free_output(config, src, taken)
            taken.add(str(dst))
        else:  # outputs lie in the batch folder, wherever it has been moved
            dst = config.out_dir / Path(job.output).name
        out.append(_decide_one(src, job, dst, config, opts_hash))
    return out


def _adoptable(config: BatchConfig, src: Source, taken: set[str]) -> Decision | None:
    """A finished output of this input under its own name, made with these options, that a
    lost or new job database does not know: its report names this input (same size and
    SHA-256) and these options, and the output still has the SHA-256 the report gives. It is
    taken back as done instead of being restored again under another name."""
    dst = output_path(config.out_dir, src.name, config.batch)
    if str(dst) in taken or not os.path.lexists(dst):
        return None
    try:
        report = json.loads(report_path(dst).read_text(encoding="utf-8"))
        source, output = report["source"], report["output"]
        fp = fingerprint(src)
        if (report.get("schema") != REPORT_SCHEMA or source["path"] != str(src.path)
                or source["size"] != fp.size or not source["sha256"]
                or report["options"] != json.loads(config.options_json())
                or output["path"] != str(dst)):
            return None
        if output_digest(dst) != output["sha256"] or content_hash(src) != source["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError, VidrestoreError):
        return None
    return Decision(src, "adopt", "done before (its report and output verify)", dst, None, fp,
                    source["sha256"], verified=True, adopted=report)


def _free_output(config: BatchConfig, src: Source, taken: set[str]) -> Path:
    """``DIR/NAME.ext``, or ``DIR/NAME-2.ext``... when another input already has that name or
    something not of this batch is there (a file of the user's, or the input itself)."""
    n = 1
    while True:
        name = src.name if n == 1 else f"{src.name}-{n}"
        dst = output_path(config.out_dir, name, config.batch)
        if str(dst) not in taken and not os.path.lexists(dst):
            return dst
        n += 1


def _decide_one(src: Source, job: Job | None, dst: Path, config: BatchConfig,
                opts_hash: str) -> Decision:
    try:
        fp = fingerprint(src)
    except SourceError as exc:
        if job is not None and job.status == "done":  # e.g. a share not mounted: keep the job
            return Decision(src, "skip", f"input unavailable ({exc}); its output is kept", dst,
                            job)
        return Decision(src, "new" if job is None else "retry", "input unreadable", dst, job,
                        error=exc)
    if job is None:
        return Decision(src, "new", "new input", dst, None, fp)
    same = (fp.size, fp.mtime_ns) == (job.size, job.mtime_ns)
    digest = job.source_hash
    if not same or config.verify_inputs:
        digest = content_hash(src)
        if job.source_hash is None or digest != job.source_hash:
            return Decision(src, "redo", "input changed", dst, job, fp, digest)
    if job.options_hash != opts_hash:
        return Decision(src, "redo", "options changed", dst, job, fp, digest)
    if job.status == "done":
        if not dst.exists():
            return Decision(src, "redo", "output missing", dst, job, fp, digest)
        if output_digest(dst) != job.output_hash:
            return Decision(src, "redo", "output does not match its recorded SHA-256", dst, job,
                            fp, digest)
        return Decision(src, "skip", "done, output verified", dst, job, fp, digest,
                        verified=True)
    if job.status == "failed":
        if job.failures > config.batch.retries:
            return Decision(src, "skip", f"failed {job.failures} times "
                            f"({job.error_class}: {job.error_message})", dst, job, fp, digest)
        return Decision(src, "retry", f"failed before ({job.error_class})", dst, job, fp, digest)
    return Decision(src, "resume", "unfinished", dst, job, fp, digest)


def _apply(db: JobDB, d: Decision, config: BatchConfig) -> Job:
    """Write a decision into the database; returns the job's row."""
    options, opts_hash = config.options_json(), config.options_hash()
    job = d.job
    if job is None:
        job = db.add(source=str(d.source.path), kind=d.source.kind, output=str(d.output),
                     options=options, options_hash=opts_hash)
    if d.action == "adopt" and d.adopted is not None and d.fingerprint is not None:
        tracks = d.adopted.get("tracks", {})
        db.set_input(job.id, size=d.fingerprint.size, mtime_ns=d.fingerprint.mtime_ns,
                     source_hash=d.source_hash)
        db.finish(job.id, frames=int(d.adopted["output"]["frames"]),
                  output_hash=str(d.adopted["output"]["sha256"]),
                  faces=int(tracks.get("faces_restored", 0)), tracks=int(tracks.get("count", 0)),
                  seconds=float(d.adopted.get("timings", {}).get("seconds", 0.0)))
        return db.job(job.id)
    if d.action == "redo":
        db.reset(job.id, options=options, options_hash=opts_hash)
        shutil.rmtree(work_dir(config, job.id), ignore_errors=True)
    elif d.action == "retry":
        db.requeue(job.id)
    if d.fingerprint is not None:
        db.set_input(job.id, size=d.fingerprint.size, mtime_ns=d.fingerprint.mtime_ns,
                     source_hash=d.source_hash)
    if d.error is not None:
        db.fail(job.id, d.error)
    return db.job(job.id)


def work_dir(config: BatchConfig, job_id: int) -> Path:
    return config.out_dir / WORK_DIR / f"job_{job_id:05d}"


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


# -- the batch ---------------------------------------------------------------------------------
@contextlib.contextmanager
def batch_lock(out_dir: Path) -> Iterator[None]:
    """One driver per output folder: a second run on the same folder is refused."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        yield
        return
    fh = open(out_dir / LOCK_NAME, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"{out_dir}: another batch is running in this folder") from None
        yield
    finally:
        fh.close()


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
        job = _apply(db, d, config)
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


def run_batch(sources: Sequence[str | os.PathLike[str]], config: BatchConfig, *,
              events: Events | None = None, worker: SegmentWorker | None = None) -> BatchResult:
    """Restore every input of ``sources`` into ``config.out_dir``, resuming earlier runs.

    Returns every job's final row; a failed job does not stop the others.
    """
    say = events or (lambda msg: log.info("%s", msg))
    found = expand_sources(sources, skip=config.out_dir)
    with open_batch(config.out_dir) as (db, undo):
        try:
            queue, ids = prepare(found, config, db, say)
        except BaseException:
            undo()
            raise
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


def make_out_dir(out_dir: Path) -> list[Path]:
    """Create the batch folder (and its parents) or say in one line why it cannot be; the
    folders it made, innermost first."""
    made = []
    p = out_dir
    while not p.exists() and p != p.parent:
        made.append(p)
        p = p.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the output folder "
                          f"({exc.strerror or exc})") from exc
    return made


@contextlib.contextmanager
def open_batch(out_dir: Path) -> Iterator[tuple[JobDB, Callable[[], None]]]:
    """The batch folder, locked, and its job database, with an ``undo`` to call when the run
    stops before any work (a damaged database, another schema, a row naming a path outside the
    folder, sources that cannot be read): it removes what this call made (the folder, the lock
    file, a new database), so a refused run leaves the folder as it was found."""
    made = make_out_dir(out_dir)
    had = {p for p in (out_dir / LOCK_NAME, out_dir / DB_NAME) if p.exists()}
    undone = opened = False

    def undo() -> None:
        nonlocal undone
        undone = True

    try:
        with batch_lock(out_dir), JobDB(out_dir) as db:
            opened = True
            yield db, undo
    finally:
        if undone or not opened:
            _remove_new(out_dir, had, made)


def _remove_new(out_dir: Path, had: set[Path], made: list[Path]) -> None:
    for p in out_dir.iterdir():
        if p.name.startswith((LOCK_NAME, DB_NAME)) and p not in had:
            p.unlink(missing_ok=True)
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()


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


def batch_running(out_dir: Path) -> bool:
    """Whether a run holds the folder (see :func:`batch_lock`); True where that is unknown."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fh = open(out_dir / LOCK_NAME, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        return False


def describe(d: Decision) -> dict[str, Any]:
    return {"source": str(d.source.path), "kind": d.source.kind, "action": d.action,
            "reason": d.reason, "output": str(d.output)}
