"""Output path rules: never write over the input, never leave a half-written file behind.

An :class:`AtomicOutput` reserves a temporary name in the destination folder (same file system,
so the final :func:`os.replace` is atomic), and either commits it into place or removes it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from ..errors import OutputError


def same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file: symlinks, ``..``, hard links and spelling included."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(dst: Path, sources: Iterable[Path], *, overwrite: bool) -> None:
    """Refuse a destination that is an input, exists (unless ``overwrite``) or has no folder."""
    for src in sources:
        if same_file(dst, src):
            raise OutputError(f"{dst}: is the input file {src}; choose another output path")
    folder = dst.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"{dst}: output folder {folder} {what}")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a folder; give a file name")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists; pass overwrite=True (--overwrite) to replace it")


def check_side_outputs(src: str | os.PathLike[str], main: tuple[str, Path] | None,
                       sides: Iterable[tuple[str, str | os.PathLike[str] | None]], *,
                       overwrite: bool) -> None:
    """Refuse, before any work, side outputs of a run (a report, a comparison) whose path is
    taken: the input, an existing file (unless ``overwrite``), a missing folder, or the main
    output (named ``main[0]``, checked by its own writer) or another side output."""
    named = dict([main]) if main is not None else {}
    for what, side in sides:
        if side is None:
            continue
        for other, path in named.items():
            if same_file(Path(side), path):
                raise OutputError(f"{side}: {what} names the same file as {other}")
        check_output(Path(side), [Path(src)], overwrite=overwrite)
        named[what] = Path(side)


def reserve_temp(dst: Path, suffix: str = "") -> tuple[Path, int]:
    """Create a new, empty, hidden temporary beside ``dst``: (its path, a descriptor to write).

    The name is random and the file is created exclusively (``O_EXCL``, which also refuses a
    symlink planted under the name), so nobody sharing the folder can make the writer follow a
    link elsewhere. Mode 0666 less the umask, as a plain ``open()`` gives (``mkstemp`` would
    make 0600, unreadable by the others sharing a cache or a batch folder).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}{suffix}")
        with contextlib.suppress(FileExistsError):
            return tmp, os.open(tmp, flags, 0o666)
    raise FileExistsError(f"no free temporary name beside {dst}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to an exclusive temporary beside ``path``, flush it to disk, and rename
    it into place (readers see the old file or the new one, never a part)."""
    tmp: Path | None = None
    try:
        tmp, fd = reserve_temp(path, ".partial")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


_OWNER = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
"""This machine, in the temporary names (a shared folder may be written from several)."""
_PARTIAL = re.compile(r"\.partial-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}")


def remove_stale_partials(dst: Path) -> None:
    """Remove the temporaries of ``dst`` that a killed process of this machine left behind
    (those of live processes, and of other machines, are left alone)."""
    with contextlib.suppress(OSError):
        for p in dst.parent.glob(f".{glob.escape(dst.stem)}.partial-*"):
            m = _PARTIAL.match(p.name[len(dst.stem) + 1:])
            if m is None or m.group(1) != _OWNER or _alive(int(m.group(2))):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class AtomicOutput:
    """A temporary file or folder beside ``dst`` that becomes ``dst`` only on :meth:`commit`.

    The temporary name keeps ``dst``'s suffix so muxers and encoders that look at the name
    pick the same format. File permissions follow the user's umask, as for a plain ``open``.
    """

    def __init__(self, dst: Path, *, overwrite: bool, folder: bool = False) -> None:
        self.dst = dst
        self.overwrite = overwrite
        self.folder = folder
        remove_stale_partials(dst)
        name = (f".{dst.stem}.partial-{_OWNER}-{os.getpid()}-{secrets.token_hex(4)}"
                f"{'' if folder else dst.suffix}")
        self.tmp = dst.parent / name
        try:
            if folder:
                os.mkdir(self.tmp, 0o777)
            else:
                os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            code = errno.errorcode.get(exc.errno, exc) if exc.errno is not None else exc
            raise OutputError(f"{dst}: cannot write in folder {dst.parent} "
                              f"({exc.strerror or code})") from exc

    def commit(self) -> None:
        """Move the finished temporary into place (atomically for a file or a new folder).

        A folder destination that already exists receives the files one by one; the caller
        has checked beforehand which of them may be replaced.
        """
        try:
            if self.folder and self.dst.is_dir():
                for item in sorted(self.tmp.iterdir(), reverse=True):
                    os.replace(item, self.dst / item.name)
                os.rmdir(self.tmp)
                return
            if self.dst.exists() and not self.overwrite:
                raise OutputError(f"{self.dst}: appeared while writing; not replaced "
                                  "(pass overwrite=True to replace it)")
            os.replace(self.tmp, self.dst)
        except OSError as exc:
            self.discard()
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"{self.dst}: cannot move the finished output into place "
                              f"({exc.strerror or exc})") from exc

    def discard(self) -> None:
        """Remove the temporary; nothing is left at the destination."""
        if self.folder:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


class Staged(Protocol):
    """An output that appears at its destination on ``commit()``, or never (``discard()``)."""

    def commit(self) -> None: ...

    def discard(self) -> None: ...


def discard_on_error(staged: Sequence[Staged]) -> Callable[..., bool]:
    """An exit callback (for :meth:`contextlib.ExitStack.push`) that discards the outputs in
    ``staged`` (as it is when the block ends) if the block fails. Pushed first, it also covers
    failures of the outputs committed by the stack's later callbacks."""

    def exit_(exc_type: type[BaseException] | None, *_: object) -> bool:
        if exc_type is not None:
            for target in staged:
                target.discard()
        return False

    return exit_
