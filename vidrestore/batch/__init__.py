"""Archive batches: resumable jobs over many inputs, in segments, with fixity and reports.

``run_batch(sources, BatchConfig(out_dir, ...))`` restores every input into ``out_dir`` and
records each job in a SQLite database there; running it again resumes. ``run_batch_ray`` does
the same on Ray workers. See :mod:`.driver` (with :mod:`.decide`, :mod:`.job`, :mod:`.lock`,
:mod:`.config`), :mod:`.segments`, :mod:`.join`, :mod:`.fixity`.
"""

from __future__ import annotations

from .config import BatchConfig
from .decide import Decision
from .driver import BatchResult, dry_run, run_batch, status
from .jobs import Job, JobDB, SegmentRecord
from .options import BatchOptions

__all__ = [
    "BatchConfig",
    "BatchOptions",
    "BatchResult",
    "Decision",
    "Job",
    "JobDB",
    "SegmentRecord",
    "dry_run",
    "run_batch",
    "status",
]
