"""What a run does with each input: new, resume (segments already finished), redo (input
or options changed, or a finished output no longer matches its recorded hash), retry (failed
before, retries left), skip (done and verified, or out of retries), or adopt (an input the
database does not know whose finished output and report are already in the folder and verify:
a lost database costs no work). Deciding reads files and the database; writing the decision
down is :func:`apply`."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import SourceError, VidrestoreError
from .config import BatchConfig, work_dir
from .fixity import output_digest
from .jobs import Job, JobDB
from .plan import output_path
from .report import REPORT_SCHEMA, report_path
from .sources import Fingerprint, Source, content_hash, fingerprint

Action = Literal["new", "resume", "redo", "retry", "skip", "adopt"]


@dataclass(frozen=True)
class Decision:
    """What a run does with one input, and why."""

    source: Source
    action: Action
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


def apply_decision(db: JobDB, d: Decision, config: BatchConfig) -> Job:
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



def describe(d: Decision) -> dict[str, Any]:
    return {"source": str(d.source.path), "kind": d.source.kind, "action": d.action,
            "reason": d.reason, "output": str(d.output)}
