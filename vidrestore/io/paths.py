"""Output path rules: never write over the input, never leave a half-written file behind.

An :class:`AtomicOutput` reserves a temporary name in the destination folder (same file system,
so the final :func:`os.replace` is atomic), and either commits it into place or removes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

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


class AtomicOutput:
    """A temporary file or folder beside ``dst`` that becomes ``dst`` only on :meth:`commit`.

    The temporary name keeps ``dst``'s suffix so muxers and encoders that look at the name
    pick the same format. File permissions follow the user's umask, as for a plain ``open``.
    """

    def __init__(self, dst: Path, *, overwrite: bool, folder: bool = False) -> None:
        self.dst = dst
        self.overwrite = overwrite
        self.folder = folder
        name = f".{dst.stem}.partial-{secrets.token_hex(4)}{'' if folder else dst.suffix}"
        self.tmp = dst.parent / name
        try:
            if folder:
                os.mkdir(self.tmp, 0o777)
            else:
                os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            raise OutputError(f"{dst}: cannot write in folder {dst.parent} "
                              f"({exc.strerror or errno.errorcode.get(exc.errno, exc)})") from exc

    def commit(self) -> None:
        """Move the finished temporary into place (atomically for a file or a new folder).

        A folder destination that already exists receives the files one by one; the caller
        has checked beforehand which of them may be replaced.
        """
        try:
            if self.folder and self.dst.is_dir():
                for item in sorted(self.tmp.iterdir()):
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


def discard_on_error(staged: list[AtomicOutput]) -> Callable[..., bool]:
    """An exit callback (for :meth:`contextlib.ExitStack.push`) that discards the outputs in
    ``staged`` (as it is when the block ends) if the block fails. Pushed first, it also covers
    failures of the outputs committed by the stack's later callbacks."""

    def exit_(exc_type: type[BaseException] | None, *_: object) -> bool:
        if exc_type is not None:
            for target in staged:
                target.discard()
        return False

    return exit_
