"""The job database: one SQLite file in the output folder, written by one process at a time.

Every input is a row of ``jobs`` (size, mtime, content hash, the options used, status, attempts,
failures with the error's class and message, timings, output path and output hash). Long inputs
are split into ``segments``; each row records the input frames it covered, the frames the
restorer emitted while they were fed, the segment file and the restorer snapshot taken after
it, with hashes, and how many times it was computed. SQLite is embedded (no server) and every
change is one transaction, so a killed process leaves the database as of its last commit.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import OutputError, UsageError

if TYPE_CHECKING:
    from .sources import SourceKind

DB_NAME = "vidrestore-jobs.sqlite"
SCHEMA_VERSION = 1
JobStatus = Literal["pending", "running", "done", "failed"]
SegmentStatus = Literal["running", "done"]
STATUSES: tuple[JobStatus, ...] = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    output TEXT NOT NULL UNIQUE,
    size INTEGER,
    mtime_ns INTEGER,
    source_hash TEXT,
    options TEXT NOT NULL,
    options_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    error_class TEXT,
    error_message TEXT,
    frames INTEGER,
    output_hash TEXT,
    faces INTEGER,
    tracks INTEGER,
    segment_frames INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    seconds REAL,
    worker TEXT
);
CREATE TABLE IF NOT EXISTS segments (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    first_frame INTEGER NOT NULL,
    frames INTEGER,
    last_pts INTEGER,
    out_first INTEGER,
    out_frames INTEGER,
    final INTEGER NOT NULL DEFAULT 0,
    path TEXT,
    hash TEXT,
    state_path TEXT,
    state_hash TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done')),
    computed INTEGER NOT NULL DEFAULT 0,
    seconds REAL,
    worker TEXT,
    PRIMARY KEY (job_id, idx)
);
"""


@dataclass
class Job:
    """One row of ``jobs``."""

    id: int
    source: str
    kind: SourceKind
    output: str
    size: int | None
    mtime_ns: int | None
    source_hash: str | None
    options: str
    options_hash: str
    status: JobStatus
    attempts: int
    failures: int
    error_class: str | None
    error_message: str | None
    frames: int | None
    output_hash: str | None
    faces: int | None
    tracks: int | None
    segment_frames: int | None
    created: float
    started: float | None
    finished: float | None
    seconds: float | None
    worker: str | None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["options"] = json.loads(self.options)
        return d


@dataclass
class SegmentRecord:
    """One row of ``segments``: input frames ``[first_frame, first_frame + frames)`` were fed,
    output frames ``[out_first, out_first + out_frames)`` came out and are in ``path``."""

    job_id: int
    idx: int
    first_frame: int
    frames: int | None = None
    last_pts: int | None = None
    out_first: int | None = None
    out_frames: int | None = None
    final: bool = False
    path: str | None = None
    hash: str | None = None
    state_path: str | None = None
    state_hash: str | None = None
    status: SegmentStatus = "running"
    computed: int = 0
    seconds: float | None = None
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class JobDB:
    """The batch database of an output folder (created on first use).

    Only the driver process writes (``batch status`` only reads); SQLite's WAL journal lets a
    status reader look in while a run commits.
    """

    def __init__(self, folder: Path, *, create: bool = True) -> None:
        self.path = Path(folder) / DB_NAME
        if not create and not self.path.is_file():
            raise UsageError(f"{folder}: no batch here (no {DB_NAME})")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise OutputError(f"{self.path}: cannot open the job database ({exc})") from exc
        self._db.row_factory = sqlite3.Row
        try:
            version = self._open(create)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if "full" in str(exc):
                raise OutputError(f"{self.path}: no space left for the job database ({exc}); "
                                  "free some space and run again (keep the database: it "
                                  "holds the batch's progress)") from exc
            raise OutputError(f"{self.path}: not a usable job database ({exc}); move it away "
                              "to start this folder's batch afresh (finished outputs whose "
                              "reports verify are taken back)") from exc
        if version is None or int(version[0]) != SCHEMA_VERSION:
            found = None if version is None else version[0]
            self._db.close()
            raise UsageError(f"{self.path}: job database schema {found}; this version reads "
                             f"schema {SCHEMA_VERSION}")
        # where the rows' paths must lie: this folder; for a reader only (a moved folder's rows
        # name the old place until a run rebases them), the folder the database records
        base = self.path.parent
        if not create:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'folder'").fetchone()
            base = Path(row[0]) if row is not None else base
        self._rows_folder = os.path.realpath(base)

    def _open(self, create: bool) -> sqlite3.Row | None:
        """Set the connection up (creating the tables if asked); the stored schema version.

        A database of another schema is not written to (read first, refused by the caller)."""
        self._db.execute("PRAGMA foreign_keys = ON")
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if has_meta:
            found = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is None or int(found[0]) != SCHEMA_VERSION:
                return found
        if create:
            self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a killed process loses nothing that was committed; a power
            # cut may lose the last commits, and their segments are then computed again.
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._tx() as db:
                for stmt in _SCHEMA.strip().split(";\n"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                           (str(SCHEMA_VERSION),))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('folder', ?)",
                           (str(self.path.parent),))
        return self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed as a whole or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- jobs ------------------------------------------------------------------------------------
    def jobs(self) -> list[Job]:
        return [self._job(r) for r in self._db.execute("SELECT * FROM jobs ORDER BY id")]

    def job(self, job_id: int) -> Job:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UsageError(f"{self.path}: no job {job_id}")
        return self._job(row)

    def find(self, source: str) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE source = ?", (source,)).fetchone()
        return None if row is None else self._job(row)

    def _inside(self, what: str, path: str | None) -> None:
        """Everything a batch writes lies in its folder: a row naming a path elsewhere (a
        hostile or mistaken edit of a database on shared storage) is refused, so nothing
        outside the folder is ever written, replaced or deleted on its say."""
        if path is None:
            return
        real = os.path.realpath(path)
        if not os.path.isabs(path) or not real.startswith(self._rows_folder + os.sep):
            raise OutputError(f"{self.path}: {what} names {path}, outside the batch folder "
                              f"{self.path.parent}; refusing to use this job database")

    def check_paths(self) -> None:
        """Refuse the database if any row names a path outside the batch folder."""
        for job in self.jobs():
            self.segments(job.id)

    def _job(self, row: sqlite3.Row) -> Job:
        job = Job(**dict(row))
        self._inside(f"job {job.id}", job.output)
        return job

    def outputs(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT output FROM jobs")}

    def add(self, *, source: str, kind: str, output: str, options: str,
            options_hash: str) -> Job:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO jobs (source, kind, output, options, options_hash, status, created) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                (source, kind, output, options, options_hash, time.time()))
        return self.job(int(cur.lastrowid or 0))

    def set_input(self, job_id: int, *, size: int, mtime_ns: int, source_hash: str | None
                  ) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET size = ?, mtime_ns = ?, source_hash = ? WHERE id = ?",
                       (size, mtime_ns, source_hash, job_id))

    def reset(self, job_id: int, *, options: str, options_hash: str) -> None:
        """Start a job afresh (its input or options changed): segments and results dropped."""
        with self._tx() as db:
            db.execute("DELETE FROM segments WHERE job_id = ?", (job_id,))
            db.execute(
                "UPDATE jobs SET status = 'pending', failures = 0, error_class = NULL, "
                "error_message = NULL, frames = NULL, output_hash = NULL, faces = NULL, "
                "tracks = NULL, finished = NULL, seconds = NULL, options = ?, "
                "options_hash = ?, segment_frames = NULL WHERE id = ?",
                (options, options_hash, job_id))

    def requeue(self, job_id: int) -> None:
        """Back to pending: an interrupted run, a retry, or a done job whose output is gone."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET status = 'pending', output_hash = NULL WHERE id = ? "
                       "AND status != 'pending'", (job_id,))

    def rebase(self, folder: Path) -> bool:
        """Point recorded outputs and work files at ``folder`` when the batch folder was moved
        or renamed (everything a batch writes lies inside it); True if anything changed.

        The folder the database was made in is recorded (older databases: taken from the
        first job's output); paths that were not inside it are left as they are, and
        :meth:`check_paths` refuses them."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'folder'").fetchone()
        if row is None:
            first = self._db.execute("SELECT output FROM jobs LIMIT 1").fetchone()
            old = None if first is None else str(Path(first[0]).parent)
        else:
            old = str(row[0])
        if old is None or Path(old) == folder:
            return False

        def moved(path: str | None) -> str | None:
            if path is None or not (path == old or path.startswith(old + os.sep)):
                return path
            return str(folder) + path[len(old):]

        with self._tx() as db:
            for job_id, output in db.execute("SELECT id, output FROM jobs").fetchall():
                db.execute("UPDATE jobs SET output = ? WHERE id = ?", (moved(output), job_id))
            for job_id, idx, path, state in db.execute(
                    "SELECT job_id, idx, path, state_path FROM segments").fetchall():
                db.execute("UPDATE segments SET path = ?, state_path = ? "
                           "WHERE job_id = ? AND idx = ?", (moved(path), moved(state), job_id, idx))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('folder', ?)", (str(folder),))
        return True

    def requeue_interrupted(self) -> int:
        """Jobs left ``running`` by a killed process go back to ``pending``; returns how many."""
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET status = 'pending' WHERE status = 'running'")
        return cur.rowcount

    def start(self, job_id: int, *, worker: str) -> None:
        """One more attempt at a job begins."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started = ?, "
                "worker = ?, error_class = NULL, error_message = NULL WHERE id = ?",
                (time.time(), worker, job_id))

    def set_segment_frames(self, job_id: int, segment_frames: int) -> None:
        """The segment size of a job's segments (segments of another size are not reused)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET segment_frames = ? WHERE id = ?",
                       (segment_frames, job_id))

    def finish(self, job_id: int, *, frames: int, output_hash: str, faces: int, tracks: int,
               seconds: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = 'done', frames = ?, output_hash = ?, faces = ?, "
                "tracks = ?, finished = ?, seconds = ? WHERE id = ?",
                (frames, output_hash, faces, tracks, time.time(), seconds, job_id))

    def fail(self, job_id: int, exc: BaseException) -> None:
        message = " ".join(str(exc).split()) or repr(exc)
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = 'failed', failures = failures + 1, error_class = ?, "
                "error_message = ?, finished = ? WHERE id = ?",
                (type(exc).__name__, message, time.time(), job_id))

    # -- segments --------------------------------------------------------------------------------
    def segments(self, job_id: int) -> list[SegmentRecord]:
        rows = self._db.execute("SELECT * FROM segments WHERE job_id = ? ORDER BY idx",
                                (job_id,))
        out = [_segment(r) for r in rows]
        for rec in out:
            self._inside(f"segment {rec.idx} of job {job_id}", rec.path)
            self._inside(f"segment {rec.idx} of job {job_id}", rec.state_path)
        return out

    def segment_begin(self, job_id: int, idx: int, first_frame: int, worker: str) -> None:
        """Count one more computation of segment ``idx`` (it is ``running`` until done)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO segments (job_id, idx, first_frame, status, computed, worker) "
                "VALUES (?, ?, ?, 'running', 1, ?) ON CONFLICT (job_id, idx) DO UPDATE SET "
                "status = 'running', first_frame = excluded.first_frame, "
                "computed = computed + 1, worker = excluded.worker",
                (job_id, idx, first_frame, worker))

    def segment_done(self, rec: SegmentRecord) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE segments SET frames = ?, last_pts = ?, out_first = ?, out_frames = ?, "
                "final = ?, path = ?, hash = ?, state_path = ?, state_hash = ?, "
                "status = 'done', seconds = ? WHERE job_id = ? AND idx = ?",
                (rec.frames, rec.last_pts, rec.out_first, rec.out_frames, int(rec.final),
                 rec.path, rec.hash, rec.state_path, rec.state_hash, rec.seconds, rec.job_id,
                 rec.idx))

    def forget_state(self, job_id: int, idx: int) -> None:
        """The snapshot after segment ``idx`` was deleted (a later one supersedes it)."""
        with self._tx() as db:
            db.execute("UPDATE segments SET state_path = NULL, state_hash = NULL "
                       "WHERE job_id = ? AND idx = ?", (job_id, idx))

    def drop_segments(self, job_id: int, from_idx: int = 0, *, keep_counts: bool = False
                      ) -> None:
        """Forget the results of segments ``from_idx`` onwards (they will be computed again).

        With ``keep_counts`` their rows stay (as unfinished) so that ``computed`` keeps counting
        every computation of the same segment; otherwise the rows are deleted.
        """
        with self._tx() as db:
            if keep_counts:
                db.execute(
                    "UPDATE segments SET status = 'running', frames = NULL, last_pts = NULL, "
                    "out_first = NULL, out_frames = NULL, final = 0, path = NULL, hash = NULL, "
                    "state_path = NULL, state_hash = NULL, seconds = NULL "
                    "WHERE job_id = ? AND idx >= ?", (job_id, from_idx))
            else:
                db.execute("DELETE FROM segments WHERE job_id = ? AND idx >= ?",
                           (job_id, from_idx))


def _segment(row: sqlite3.Row) -> SegmentRecord:
    d = dict(row)
    d["final"] = bool(d["final"])
    return SegmentRecord(**d)
