"""The batch folder: made, locked for one driver, opened with its job database, and left as
it was found when a run is refused before any work."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputError, UsageError
from .jobs import DB_NAME, JobDB

LOCK_NAME = ".vidrestore-batch.lock"


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


