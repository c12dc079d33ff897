"""SHA-256 of files and of sets of files, the one way the project computes them.

A set's digest is that of its ``sha256sum`` listing (``HASH  NAME`` lines), so it changes when
any file's content, name or presence does, and ``sha256sum -c`` checks the same listing.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's content."""
    with open(path, "rb") as fh:
        if sys.version_info >= (3, 11):
            return hashlib.file_digest(fh, "sha256").hexdigest()
        digest = hashlib.sha256()  # Python 3.10 has no hashlib.file_digest
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


def sha256_listing(entries: Iterable[tuple[Path, str]]) -> tuple[str, list[tuple[str, str]]]:
    """(the digest of the listing, its ``(hash, name)`` lines) for ``(file, name)`` pairs."""
    lines = [(sha256_file(p), name) for p, name in entries]
    listing = "".join(f"{h}  {n}\n" for h, n in lines).encode()
    return hashlib.sha256(listing).hexdigest(), lines
