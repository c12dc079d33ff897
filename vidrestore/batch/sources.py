"""Turn the user's SOURCES (files, folders, image-sequence folders, list files) into inputs.

Rules, applied in order to each item:

* ``@FILE`` or a file ending in ``.txt``/``.lst``/``.list``: a list file, one source per line
  (blank lines and ``#`` comments skipped; relative paths are relative to the list's folder).
* a numbered pattern (``scans/reel1/%06d.dpx``): an image sequence.
* a folder holding images and no videos: an image sequence (the folder is one source).
* any other folder: its videos and image-sequence sub-folders, recursively, in name order.
* anything else, existing or not, is a video source; a missing or unreadable one fails as its
  own job with its error recorded, so one bad entry never stops the batch.

Identity and change detection: :func:`fingerprint` gives size and modification time (cheap,
checked on every run) and :func:`content_hash` the SHA-256 (of the file, or of the listing of
every image's name and content for a sequence).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import SourceError, UsageError
from ..io.digest import sha256_file, sha256_listing
from ..io.sequence import IMAGE_SUFFIXES, sequence_files

VIDEO_SUFFIXES = (
    ".mov", ".mp4", ".m4v", ".mkv", ".avi", ".mxf", ".webm", ".mpg", ".mpeg", ".m2v", ".ts",
    ".m2ts", ".mts", ".dv", ".y4m", ".wmv", ".flv", ".3gp", ".ogv", ".vob", ".nut",
)
LIST_SUFFIXES = (".txt", ".lst", ".list")
_PATTERN = re.compile(r"%0?\d*d")
_MAX_LIST_DEPTH = 8

SourceKind = Literal["video", "sequence"]


@dataclass(frozen=True)
class Source:
    """One input of a batch: a video file or an image sequence (folder or pattern)."""

    path: Path
    kind: SourceKind

    @property
    def name(self) -> str:
        """Base name of its outputs: the file stem, or the sequence folder's name."""
        if self.kind == "sequence":
            folder = self.path.parent if _PATTERN.search(self.path.name) else self.path
            return folder.name or "sequence"
        return self.path.stem or self.path.name


def expand_sources(items: Sequence[str | os.PathLike[str]],
                   skip: Path | None = None) -> list[Source]:
    """The sources named by ``items``, each once, in the order given (folders in name order).

    Folder scans leave out the folder ``skip`` (the batch's own output folder, which may lie
    inside a scanned folder): its outputs are not inputs.
    """
    out: list[Source] = []
    seen: set[str] = set()  # real paths: a file reached through links is one input
    for item in items:
        for src in _expand(str(item), Path.cwd(), 0, skip):
            real = os.path.realpath(src.path)
            if real not in seen:
                seen.add(real)
                out.append(src)
    if not out:
        raise UsageError("no sources: give video files, folders, image-sequence folders or a "
                         "list file (@list.txt)")
    return out


def _expand(item: str, base: Path, depth: int, skip: Path | None) -> Iterable[Source]:
    is_list = item.startswith("@")
    path = _absolute(Path(item[1:] if is_list else item), base)
    if is_list or (path.is_file() and path.suffix.lower() in LIST_SUFFIXES):
        if depth >= _MAX_LIST_DEPTH:
            raise UsageError(f"{path}: list files nested more than {_MAX_LIST_DEPTH} deep")
        yield from _read_list(path, depth, skip)
    elif _PATTERN.search(path.name):
        yield Source(path, "sequence")
    elif path.is_dir():
        yield from _scan_folder(path, skip)
    else:
        yield Source(path, "video")


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else base / path))


def _read_list(path: Path, depth: int, skip: Path | None) -> Iterable[Source]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # lists saved by Windows tools start with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the list file ({exc})") from exc
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            yield from _expand(entry, path.parent, depth + 1, skip)


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")


def _scan_folder(folder: Path, skip: Path | None,
                 visited: frozenset[str] = frozenset()) -> Iterable[Source]:
    real = os.path.realpath(folder)
    if real in visited:  # a link back to a folder above: scanned once
        return
    visited = visited | {real}
    entries = sorted((p for p in folder.iterdir() if p != skip), key=lambda p: p.name)
    files = [p for p in entries if p.is_file()]
    if any(_is_image(p) for p in files) and not any(_is_video(p) for p in files):
        yield Source(folder, "sequence")
        return
    for p in entries:
        if p.name.startswith("."):
            continue
        if p.is_dir():
            yield from _scan_folder(p, skip, visited)
        elif _is_video(p):
            yield Source(p, "video")


@dataclass(frozen=True)
class Fingerprint:
    """Cheap identity of an input: total size in bytes and newest modification time (ns)."""

    size: int
    mtime_ns: int


def _files(src: Source) -> list[Path]:
    if src.kind == "sequence":
        return sequence_files(src.path)
    if not src.path.exists():
        raise SourceError(f"{src.path}: no such file")
    if not src.path.is_file():
        raise SourceError(f"{src.path}: not a regular file")
    return [src.path]


def fingerprint(src: Source) -> Fingerprint:
    """Size and mtime of a source (summed / newest over a sequence's images)."""
    size, mtime = 0, 0
    try:
        for p in _files(src):
            st = p.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
    except OSError as exc:
        raise SourceError(f"{src.path}: cannot read ({exc.strerror or exc})") from exc
    return Fingerprint(size, mtime)


def content_hash(src: Source) -> str:
    """SHA-256 of a video file; of the ``sha256sum``-style listing of a sequence's images."""
    try:
        files = _files(src)
        if src.kind == "video":
            return sha256_file(files[0])
        return sha256_listing((p, p.name) for p in files)[0]
    except OSError as exc:
        raise SourceError(f"{src.path}: cannot read ({exc.strerror or exc})") from exc
