"""Hashes and trust-on-first-use records.

Entries without a published hash are trusted on first use: the first verified file's size and
hash go into ``recorded.json`` in the cache, and later checks compare against that record. A
file's hash is remembered in a sidecar keyed by the file's identity and change time, so an
unchanged file is not read again on every start.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..io.digest import sha256_file
from ..io.paths import write_text_atomic
from .env import cache_error

RECORD_FILE = "recorded.json"


def cached_sha256(path: Path) -> str:
    """SHA-256 of ``path``, remembered in a sidecar keyed by the file's identity and change
    time: any write to the file (even one that puts its mtime back) moves its ctime, which
    no user can set, so a changed file is hashed again."""
    st = path.stat()
    side = path.with_name(f".{path.name}.sha256")
    key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    with contextlib.suppress(OSError, ValueError):
        if not side.is_symlink():
            k, digest = side.read_text().split()
            if k == key:
                return digest
    digest = sha256_file(path)
    with contextlib.suppress(OutputError):
        write_text_atomic(side, f"{key} {digest}\n")
    return digest


def read_records(home: Path) -> dict[str, Any]:
    """The first-use records of the cache at ``home`` (none yet: empty)."""
    p = home / RECORD_FILE
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    except OSError as exc:
        raise cache_error(home, exc) from None


def write_record(home: Path, name: str, path: Path) -> str:
    """Record ``path``'s size and hash as what ``name`` is; returns the hash."""
    recs = read_records(home)
    recs[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    try:
        write_text_atomic(home / RECORD_FILE, json.dumps(recs, indent=2))
    except OutputError as exc:
        raise cache_error(home, exc.__cause__ or exc) from None
    return recs[name]["sha256"]
