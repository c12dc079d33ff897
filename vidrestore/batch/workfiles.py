"""The files of a job's work folder: segment files, their manifests and snapshots, and the
checks that decide whether a segment on disk can be kept (its manifest and digest) and whether
its snapshot can be resumed from."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..io.digest import sha256_file
from ..io.frame import Frame
from .fixity import FrameSum, sequence_files, sha256_tree
from .jobs import SegmentRecord
from .plan import JobSpec, Plan


def segment_path(spec: JobSpec, plan: Plan, idx: int) -> Path:
    work = Path(spec.work_dir)
    if plan.join == "images":
        return work / f"seg_{idx:05d}"
    if plan.join == "encode":
        return work / f"seg_{idx:05d}.mkv"
    return work / f"seg_{idx:05d}{Path(spec.output).suffix}"


def manifest_path(seg: Path) -> Path:
    return seg.with_name(seg.name.split(".")[0] + ".json")


def snapshot_path(seg: Path) -> Path:
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
    return Manifest.load(manifest_path(Path(rec.path)))


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
