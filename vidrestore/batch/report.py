"""Per-job JSON reports and the ``batch status`` table.

Report schema (``<output>.report.json``, ``"schema": "vidrestore.batch.job/1"``): source (path,
kind, size, SHA-256), output (path, SHA-256, frames, sidecars), video (codec, size, pixel
format, field order, field handling), options (restore, faces, writer, batch), tracks
(count, faces restored per track), segments (input and output frame ranges, times computed,
seconds), timings and the versions of vidrestore, torch, PyAV/FFmpeg, numpy and Python.
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ..io.paths import write_text_atomic
from .jobs import Job, SegmentRecord

REPORT_SCHEMA = "vidrestore.batch.job/1"


def versions() -> dict[str, str]:
    """Versions of everything that shapes an output."""
    import av
    import numpy
    import torch

    from .. import __version__

    out = {"vidrestore": __version__, "torch": torch.__version__, "av": av.__version__,
           "ffmpeg": str(getattr(av, "ffmpeg_version_info", "")),
           "numpy": numpy.__version__, "python": platform.python_version()}
    return out


def report_path(output: Path) -> Path:
    return output.with_name(output.name + ".report.json")


def job_report(job: Job, segments: list[SegmentRecord], *, video: dict[str, Any],
               output: dict[str, Any], faces_restored: dict[int, int],
               seconds: float, steps: dict[str, float] | None = None) -> dict[str, Any]:
    """The report of one finished job."""
    return {
        "schema": REPORT_SCHEMA,
        "job": job.id,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": {"path": job.source, "kind": job.kind, "size": job.size,
                   "sha256": job.source_hash},
        "output": output,
        "video": video,
        "options": json.loads(job.options),
        "tracks": {
            "count": len(faces_restored),
            "faces_restored": sum(faces_restored.values()),
            "per_track": {str(k): v for k, v in sorted(faces_restored.items())},
        },
        "segments": [
            {"index": s.idx, "input_frames": [s.first_frame, s.first_frame + (s.frames or 0)],
             "output_frames": [s.out_first, (s.out_first or 0) + (s.out_frames or 0)],
             "computed": s.computed, "seconds": _round(s.seconds), "worker": s.worker}
            for s in segments
        ],
        "timings": {"seconds": round(seconds, 3),
                    "segment_seconds": _round(sum(s.seconds or 0 for s in segments)),
                    **{f"{k}_seconds": round(v, 3) for k, v in (steps or {}).items()},
                    "attempts": job.attempts},
        "versions": versions(),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def write_report(path: Path, report: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")


# -- status ------------------------------------------------------------------------------------
def status_dict(jobs: list[Job], segments: dict[int, list[SegmentRecord]]) -> dict[str, Any]:
    """What ``batch status --json`` prints."""
    counts = Counter(j.status for j in jobs)
    return {
        "jobs": [
            {**j.to_dict(),
             "segments_done": sum(1 for s in segments.get(j.id, []) if s.status == "done"),
             "segments_computed": sum(s.computed for s in segments.get(j.id, []))}
            for j in jobs
        ],
        "counts": {s: counts.get(s, 0) for s in ("pending", "running", "done", "failed")},
    }


def status_table(jobs: list[Job], segments: dict[int, list[SegmentRecord]]) -> str:
    """A plain-text table of the jobs, one line each, and a count per status."""
    head = ("ID", "STATUS", "TRIES", "FRAMES", "SEGS", "SECONDS", "SOURCE", "OUTPUT / ERROR")
    rows = [head]
    for j in jobs:
        segs = segments.get(j.id, [])
        done = sum(1 for s in segs if s.status == "done")
        last = j.output if j.status != "failed" else f"{j.error_class}: {j.error_message}"
        rows.append((str(j.id), j.status, str(j.attempts), "" if j.frames is None else
                     str(j.frames), str(done) if segs else "",
                     "" if j.seconds is None else f"{j.seconds:.1f}", Path(j.source).name,
                     Path(last).name if j.status != "failed" else last))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    counts = Counter(j.status for j in jobs)
    lines.append(", ".join(f"{counts.get(s, 0)} {s}"
                           for s in ("done", "failed", "pending", "running")))
    return "\n".join(lines)
