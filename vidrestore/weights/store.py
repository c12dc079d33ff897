"""The local cache of model files: verified downloads, imports and status checks.

A :class:`WeightStore` is given its folder and mirrors; :meth:`WeightStore.from_env` reads them
from the environment once, where a host starts (the CLI, a node pack), and the store is passed
down from there. It hands out paths of verified files only; building networks from them is the
model side's job (:func:`vidrestore.models.load_restorer`).

A download streams to a temporary file beside the final one, is checked for size and hash, and
only then renamed into place, so a half file never carries the final name. Mirrors (folders or
http(s) base URLs) are tried before the upstream URLs. A file whose hash does not match is
refused, never used.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from ..errors import UsageError, WeightsError
from ..io.paths import reserve_temp
from .env import (
    MIRROR_ENV,
    CacheFolderError,
    cache_error,
    default_home,
    mirrors_from_env,
    offline_from_env,
    user_cache_home,
)
from .fetch import copy_file, fetch_url, looks_like_checkpoint
from .manifest import WeightSpec, load_manifest
from .records import RECORD_FILE, cached_sha256, read_records, sha256_file, write_record

log = logging.getLogger("vidrestore.weights")

STALE_PART_S = 600.0
T = TypeVar("T")
WeightState = Literal["present", "missing", "corrupt", "unverified"]


@dataclass(frozen=True)
class WeightStatus:
    """What the cache holds for one entry."""

    spec: WeightSpec
    path: Path
    state: WeightState
    detail: str = ""


class WeightStore:
    """The local cache of model files, with download, verification and import.

    Args:
        home: cache folder (default: the platform's user cache folder).
        mirrors: folders or base URLs tried before the upstream URLs.
        manifest: entries to serve (default: the project's manifest).
        offline: never touch the network.
        progress: show a tqdm bar while downloading.
    """

    def __init__(
        self,
        home: Path | str | None = None,
        *,
        mirrors: tuple[str, ...] = (),
        manifest: dict[str, WeightSpec] | None = None,
        offline: bool = False,
        progress: bool = True,
    ) -> None:
        self.home = Path(home) if home is not None else user_cache_home()
        self.mirrors = mirrors
        self.manifest = manifest if manifest is not None else load_manifest()
        self.offline = offline
        self.progress = progress

    @classmethod
    def from_env(cls, *, progress: bool = True) -> WeightStore:
        """The store the environment names: ``$VIDRESTORE_HOME`` (else the user cache folder),
        ``$VIDRESTORE_MIRROR``, ``$VIDRESTORE_OFFLINE`` (1, true, yes or on). Hosts call this
        once at start."""
        return cls(default_home(), mirrors=mirrors_from_env(), offline=offline_from_env(),
                   progress=progress)

    # -- lookup -----------------------------------------------------------------------------
    def spec(self, name: str) -> WeightSpec:
        """The manifest entry called ``name``; unknown names list the known ones."""
        try:
            return self.manifest[name]
        except KeyError:
            known = ", ".join(self.manifest)
            raise UsageError(f"unknown model file {name!r}; known: {known}") from None

    def path(self, name: str) -> Path:
        """Where the file for ``name`` lives in the cache (present or not)."""
        return self.home / self.spec(name).file

    def expected(self, name: str) -> tuple[int | None, str | None]:
        """(size, sha256) to check against: the manifest's, else the first-use record."""
        spec = self.spec(name)
        if spec.verified:
            return spec.size, spec.sha256
        rec = self._records().get(name, {})
        return rec.get("size"), rec.get("sha256")

    # -- state ------------------------------------------------------------------------------
    def status(self, name: str, *, rehash: bool = False) -> WeightStatus:
        """Check the cached file against its size and hash (the hash remembered in a sidecar
        until the file changes, :func:`~.records.cached_sha256`)."""
        spec = self.spec(name)
        path = self.path(name)
        if not path.is_file():
            return WeightStatus(spec, path, "missing")
        size, sha = self.expected(name)
        actual_size = path.stat().st_size
        if size is not None and actual_size != size:
            return WeightStatus(spec, path, "corrupt", f"size {actual_size}, expected {size}")
        if sha is None:
            return WeightStatus(spec, path, "unverified", "no published hash and none recorded")
        actual = cached_sha256(path) if not rehash else sha256_file(path)
        if actual != sha:
            return WeightStatus(spec, path, "corrupt", f"sha256 {actual}, expected {sha}")
        return WeightStatus(spec, path, "present")

    def ensure(self, name: str, *, download: bool = True, record: bool = True) -> Path:
        """Path of a verified local file for ``name``, downloading it when missing.

        A file without a published hash is recorded as trusted on first use; ``record=False``
        leaves that to :meth:`load`, which records it only once it has loaded as its model.
        """
        st = self.status(name)
        if st.state == "present":
            return st.path
        if st.state == "unverified":
            if record:
                self._record(name, st.path)
            return st.path
        if st.state == "corrupt":
            raise WeightsError(
                f"{st.path} fails its check ({st.detail}); delete it and run "
                f"`vidrestore weights download {name}`"
            )
        if not download:
            raise self._missing_error(name, "downloads are disabled")
        return self.download(name, record=record)

    def load(self, name: str, build: Callable[[Path], T], *, download: bool = True) -> T:
        """``build(path)`` on the verified file of ``name``; a file trusted on first use is
        recorded only after ``build`` has accepted it (a wrong file is never recorded)."""
        path = self.ensure(name, download=download, record=False)
        made = build(path)
        if self.status(name).state == "unverified":
            self._record(name, path)
        return made

    # -- getting files ----------------------------------------------------------------------
    def download(self, name: str, *, force: bool = False, record: bool = True) -> Path:
        """Fetch ``name`` from the mirrors, then the upstream URLs; verify; install atomically.

        A file without a published hash is recorded as trusted (``record=False``: left to
        :meth:`load`, once the file has loaded as its model)."""
        spec = self.spec(name)
        dest = self.path(name)
        if dest.exists() and not force and self.status(name).state == "present":
            return dest
        self._make_folder(dest.parent)
        failures: list[str] = []
        for source in self._sources(spec):
            is_url = "://" in source
            if is_url and self.offline:
                failures.append(f"{source}: offline")
                continue
            try:
                with self._staged(dest) as (tmp, fh):
                    if is_url:
                        fetch_url(source, fh, limit=self.expected(spec.name)[0],
                                  size=spec.size, desc=spec.file, progress=self.progress)
                    else:
                        copy_file(Path(source), fh)
                    fh.flush()
                    self._check(name, tmp, source)
                    os.replace(tmp, dest)
            except CacheFolderError:
                raise
            except (
                WeightsError, OSError, urllib.error.URLError, http.client.HTTPException, ValueError
            ) as exc:
                # HTTPException: a body cut short (IncompleteRead) or a garbled answer.
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{source}: {reason}")
                log.info("could not get %s from %s: %s", spec.file, source, reason)
                continue
            if record:
                self._record(name, dest)
            log.info("installed %s from %s", dest, source)
            return dest
        raise self._missing_error(name, "; ".join(failures) or "no source to try")

    def download_many(
        self,
        names: Iterable[str],
        *,
        force: bool = False,
        on_done: Callable[[str, Path], None] | None = None,
    ) -> dict[str, Path]:
        """Download each of ``names``; one that cannot be fetched does not stop the others.

        Unknown names are refused before anything is fetched. ``on_done(name, path)`` runs after
        each success; the failures are raised together at the end, as one error.
        """
        todo = list(dict.fromkeys(names))
        for name in todo:
            self.spec(name)
        done: dict[str, Path] = {}
        failed: dict[str, WeightsError] = {}
        for name in todo:
            try:
                done[name] = self.download(name, force=force)
            except CacheFolderError:
                raise
            except WeightsError as exc:
                failed[name] = exc
                continue
            if on_done is not None:
                on_done(name, done[name])
        if len(failed) == 1 and len(todo) == 1:
            raise failed[todo[0]]
        if failed:
            raise WeightsError(
                f"could not get {len(failed)} of {len(todo)} model files ({', '.join(failed)}): "
                + "; ".join(str(exc) for exc in failed.values())
            )
        return done

    def import_file(self, name: str, src: Path | str,
                    check: Callable[[Path], object] | None = None) -> Path:
        """Copy a file the user obtained by hand into the cache, after checking it.

        For an entry the manifest does not pin, importing is the user's own decision to trust
        the file: it replaces an earlier first-use record (a wrong file imported by mistake can
        be corrected by importing the right one). ``check(src)`` (which raises for a file that
        is not the model) then runs first, so a wrong model is never recorded.
        """
        src = Path(src)
        if not src.is_file():
            raise UsageError(f"{src}: no such file")
        dest = self.path(name)
        pinned = self.spec(name).verified
        self._make_folder(dest.parent)
        if check is not None and not pinned:
            check(src)
        with self._staged(dest) as (tmp, fh):
            copy_file(src, fh)
            fh.flush()
            self._check(name, tmp, str(src), recorded=pinned)
            os.replace(tmp, dest)
        self._record(name, dest, replace=not pinned)
        return dest

    # -- internals --------------------------------------------------------------------------
    def _sources(self, spec: WeightSpec) -> list[str]:
        out: list[str] = []
        for m in self.mirrors:
            if "://" in m:
                out.append(m.rstrip("/") + "/" + urllib.parse.quote(spec.file))
            else:
                out.append(str(Path(m).expanduser() / spec.file))
        out.extend(spec.urls)
        return out

    @contextlib.contextmanager
    def _staged(self, dest: Path) -> Iterator[tuple[Path, IO[bytes]]]:
        """A temporary file beside ``dest`` (whose folder the caller made); removed unless it
        was renamed into place."""
        for stale in dest.parent.glob(f".{dest.name}.*.part"):
            # Left by a killed process; a live download touches its file every few seconds.
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > STALE_PART_S:
                    stale.unlink()
        try:
            tmp, fd = reserve_temp(dest, ".part")
        except OSError as exc:
            raise cache_error(dest.parent, exc) from None
        try:
            with os.fdopen(fd, "wb") as fh:
                yield tmp, fh
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _make_folder(folder: Path) -> None:
        """Create the cache folder, or say why it cannot be used."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cache_error(folder, exc) from None

    def _check(self, name: str, path: Path, source: str, *, recorded: bool = True) -> None:
        """Size and hash as expected (``recorded=False``: a first-use record is not held
        against the file); a ``.pth`` must at least look like a PyTorch checkpoint."""
        if self.spec(name).file.endswith(".pth") and not looks_like_checkpoint(path):
            raise WeightsError(f"not a PyTorch checkpoint (from {source})")
        size, sha = self.expected(name) if recorded or self.spec(name).verified else (None, None)
        actual_size = path.stat().st_size
        if size is not None and actual_size != size:
            raise WeightsError(f"size {actual_size} bytes, expected {size} (from {source})")
        if sha is not None:
            actual = sha256_file(path)
            if actual != sha:
                raise WeightsError(f"sha256 {actual} does not match {sha} (from {source})")

    def _missing_error(self, name: str, why: str) -> WeightsError:
        spec = self.spec(name)
        return WeightsError(
            f"model file {spec.file} ({name}) is missing and could not be fetched ({why}). "
            f"Download it from {spec.urls[0]} and run `vidrestore weights import {name} FILE`, "
            f"or put it at {self.path(name)}, or run `vidrestore weights download {name}` "
            f"when online (a mirror folder or URL can be named in ${MIRROR_ENV})"
        )

    def _records(self) -> dict[str, Any]:
        return read_records(self.home)

    def _record(self, name: str, path: Path, *, replace: bool = False) -> None:
        """Trust-on-first-use record for entries the manifest does not pin (``replace``: also
        when one is held)."""
        if self.spec(name).verified or (self.expected(name)[1] is not None and not replace):
            return
        digest = write_record(self.home, name, path)
        log.warning(
            "%s has no published hash; recorded sha256 %s on first use in %s",
            path.name, digest, self.home / RECORD_FILE,
        )
