"""Exported graphs on disk, never trusted blindly.

A graph's file is named by the hash of what it was made from (:func:`graph_key` of the weights'
digest, the configuration, the graph version, the opset and the torch version; not of the
runtime, the precision or the batch size: one float32 file with a dynamic batch serves them
all, the precision being a compile option of OpenVINO), written atomically with the SHA-256 of
its content in a sidecar, and used only while its content still has that hash, holds all its
weights itself and the runtime loads it. The runtime is handed the bytes that were checked,
never the path: a graph cannot make it read another file (ONNX "external data" names files
beside a model; a graph that uses it is refused before any runtime sees it). Anything else (a
missing or stale sidecar, a truncated or altered file, one the runtime refuses) is exported
again and replaces it. A folder that cannot be written costs only the reuse.

Earlier exports of the same graph (another vidrestore or torch version: other names, the same
weights) would otherwise stay forever, hundreds of MB per checkpoint: each use of a graph marks
its sidecar, and the earlier ones its caller names are removed once unused for
:data:`STALE_SECONDS`, so a process of another version sharing the folder keeps its own while
it runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from ...errors import OutputError
from ...io.paths import write_bytes_atomic, write_text_atomic

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Sub-folder of the vidrestore cache (``$VIDRESTORE_HOME``) holding the graphs.
FOLDER = "runtime"
SUFFIX = ".onnx"
DIGEST_SUFFIX = ".sha256"
#: How long an earlier export of a graph stays unused before it is removed.
STALE_SECONDS = 24 * 3600


def graph_key(facts: Mapping[str, object]) -> str:
    """A short hex name for ``facts`` (JSON-able: weights digest, configuration, versions)."""
    text = json.dumps(facts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class GraphCache:
    """Graph files in ``folder`` (None: no files, every graph is exported and kept in memory)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def path(self, stem: str) -> Path | None:
        """Where the graph called ``stem`` lives (None without a folder)."""
        return None if self.folder is None else self.folder / (stem + SUFFIX)

    def fetch(self, stem: str, export: Callable[[], bytes], load: Callable[[bytes], T], *,
              earlier: Sequence[str] = ()) -> T:
        """``load`` of the cached graph ``stem`` when it is intact and loads, else of a fresh
        ``export()``, which is stored for next time. ``earlier``: glob patterns of the stems
        of earlier exports of this graph, removed when unused for :data:`STALE_SECONDS`."""
        path = self.path(stem)
        if path is not None:
            self._remove_stale(path, earlier)
        if path is not None and (cached := self._read_intact(path)) is not None:
            try:
                graph = load(cached)
            except Exception as exc:  # each runtime raises its own types for a bad file
                log.warning("%s: the runtime refused it (%s); exporting it again", path, exc)
            else:
                _mark_used(path)
                return graph
        log.info("exporting the %s graph%s", stem, "" if path is None else f" to {path}")
        data = export()
        if path is None:
            return load(data)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, data)
            write_text_atomic(_digest_path(path), hashlib.sha256(data).hexdigest() + "\n")
        except (OSError, OutputError) as exc:
            log.warning("cannot keep the %s graph in %s (%s): it is exported again next time",
                        stem, path.parent, exc)
        return load(data)

    @staticmethod
    def _remove_stale(path: Path, earlier: Sequence[str]) -> None:
        """Remove the files of ``path``'s folder whose stems match ``earlier`` (not ``path``)
        and whose last use is :data:`STALE_SECONDS` ago or more."""
        now = time.time()
        for pattern in earlier:
            for old in path.parent.glob(pattern + SUFFIX):
                if old == path:
                    continue
                sidecar = _digest_path(old)
                try:
                    used = (sidecar if sidecar.exists() else old).stat().st_mtime
                    if now - used < STALE_SECONDS:
                        continue
                    old.unlink()
                    sidecar.unlink(missing_ok=True)
                except OSError as exc:  # another process's, or not ours to remove
                    log.debug("cannot remove the earlier graph %s (%s)", old, exc)
                    continue
                log.info("removed %s, an earlier export of this graph unused for a day", old)

    @staticmethod
    def _read_intact(path: Path) -> bytes | None:
        """The content of ``path`` when it still has the hash written beside it and holds its
        weights itself (None: missing, altered or naming other files)."""
        try:
            expected = _digest_path(path).read_text().strip()
            data = path.read_bytes()
        except (OSError, UnicodeDecodeError):
            return None
        if hashlib.sha256(data).hexdigest() != expected:
            return None
        if names_external_data(data):
            log.warning("%s names weight files outside itself: refused", path)
            return None
        return data


def names_external_data(data: bytes) -> bool:
    """Whether the ONNX model ``data`` keeps any tensor in another file ("external data")."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    try:
        model = onnx.load_model_from_string(data)  # parses only: reads no other file
    except Exception:  # not a model: the runtime's own refusal says so
        return False
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in _get_all_tensors(model))


def _mark_used(path: Path) -> None:
    """Record that the graph at ``path`` was used now (its sidecar's time)."""
    with contextlib.suppress(OSError):  # a folder we may not write: the reuse still works
        os.utime(_digest_path(path))


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)
