"""Model files: the manifest, the local cache, verified downloads and imports.

Every file vidrestore can use has one manifest entry (``vidrestore/manifest.json``): file name,
size, SHA-256, licence, origin and the URLs it is published at. A :class:`WeightStore` is given
its folder and mirrors; :meth:`WeightStore.from_env` reads them from ``$VIDRESTORE_HOME``
(default: the user's cache folder), ``$VIDRESTORE_MIRROR`` and ``$VIDRESTORE_OFFLINE`` once,
where a host starts (the CLI, a node pack), and the store is passed down from there.

A download streams to a temporary file beside the final one, is checked for size and hash, and
only then renamed into place, so a half file never carries the final name. Mirrors (folders or
http(s) base URLs) are tried before the upstream URLs. A file whose hash does not match is
refused, never used.

Entries without a published hash are trusted on first use: the first verified download records its
size and hash in ``recorded.json`` in the cache, and later checks compare against that record.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .errors import OutputError, UsageError, WeightsError
from .io.paths import reserve_temp, write_text_atomic

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).with_name("manifest.json")
HOME_ENV = "VIDRESTORE_HOME"
MIRROR_ENV = "VIDRESTORE_MIRROR"
OFFLINE_ENV = "VIDRESTORE_OFFLINE"
RECORD_FILE = "recorded.json"
CHUNK = 1 << 20
TIMEOUT_S = 30.0
STALE_PART_S = 600.0
T = TypeVar("T")
MAX_DOWNLOAD = 2 << 30
"""Bytes read at most for a model whose size is not known (the largest known is ~0.4 GB)."""


class _CacheFolderError(WeightsError):
    """The cache folder cannot be created, read or written: no source can help."""


@dataclass(frozen=True)
class WeightSpec:
    """One manifest entry."""

    name: str
    file: str
    size: int | None
    sha256: str | None
    license: str
    origin: str
    purpose: str
    urls: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """Whether the manifest pins both size and hash."""
        return self.size is not None and self.sha256 is not None


@dataclass(frozen=True)
class WeightStatus:
    """What the cache holds for one entry."""

    spec: WeightSpec
    path: Path
    state: str  # "present", "missing", "corrupt", "unverified"
    detail: str = ""


def load_manifest(path: Path | str = MANIFEST_PATH) -> dict[str, WeightSpec]:
    """Read a manifest file into ``{name: WeightSpec}``, in file order."""
    data = json.loads(Path(path).read_text())
    if data.get("schema") != 1:
        raise WeightsError(f"{path}: unsupported manifest schema {data.get('schema')!r}")
    return {
        name: WeightSpec(
            name=name,
            file=e["file"],
            size=e.get("size"),
            sha256=e.get("sha256"),
            license=e["license"],
            origin=e["origin"],
            purpose=e.get("purpose", ""),
            urls=tuple(e["urls"]),
        )
        for name, e in data["models"].items()
    }


def user_cache_home() -> Path:
    """The platform's user cache folder for model files."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("vidrestore")) / "weights"


def default_home() -> Path:
    """``$VIDRESTORE_HOME``, else the platform's user cache folder."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else user_cache_home()


def mirrors_from_env() -> tuple[str, ...]:
    """Mirrors named by ``$VIDRESTORE_MIRROR`` (folders or http(s) base URLs)."""
    raw = os.environ.get(MIRROR_ENV, "")
    pieces = _split_mirrors(raw) if os.pathsep == ":" else raw.split(os.pathsep)
    return tuple(p.strip() for p in pieces if p.strip())


def _split_mirrors(raw: str) -> list[str]:
    """Split at ':' except inside a URL: after its scheme, in an IPv6 host, before its port."""
    items: list[str] = []
    for part in raw.split(":"):
        last = items[-1] if items else None
        in_url = last is not None and re.fullmatch(r"https?://[^/]*", last.strip()) is not None
        if last is not None and (
            (last.strip() in ("http", "https") and part.startswith("//"))
            or (in_url and last.count("[") > last.count("]"))
            or (in_url and re.match(r"\d+(/|$)", part))
        ):
            items[-1] = f"{last}:{part}"
        else:
            items.append(part)
    return items


def _announced_length(resp: Any) -> int | None:
    """The body size the server announced, if any (a chunked body's Content-Length is void)."""
    if "chunked" in (resp.headers.get("Transfer-Encoding") or "").lower():
        return None
    try:
        n = int(resp.headers.get("Content-Length") or "")
    except ValueError:
        return None
    return n if n >= 0 else None


def _cache_error(folder: Path, exc: OSError) -> _CacheFolderError:
    """One line naming the cache folder and the system's reason."""
    return _CacheFolderError(
        f"cache folder {folder} is not usable ({exc.strerror or exc}); "
        f"set ${HOME_ENV} to a writable folder"
    )


def _looks_like_checkpoint(path: Path) -> bool:
    """``torch.save``'s zip archive, or its older pickle stream (not an HTML error page)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


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
        offline = os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        return cls(default_home(), mirrors=mirrors_from_env(), offline=offline,
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
        """Check the cached file against its size and hash (cached by size and mtime)."""
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
        actual = self._hash_cached(path) if not rehash else sha256_file(path)
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
        return self.download(name)

    def load(self, name: str, build: Callable[[Path], T], *, download: bool = True) -> T:
        """``build(path)`` on the verified file of ``name``; a file trusted on first use is
        recorded only after ``build`` has accepted it (a wrong file is never recorded)."""
        path = self.ensure(name, download=download, record=False)
        made = build(path)
        if self.status(name).state == "unverified":
            self._record(name, path)
        return made

    # -- getting files ----------------------------------------------------------------------
    def download(self, name: str, *, force: bool = False) -> Path:
        """Fetch ``name`` from the mirrors, then the upstream URLs; verify; install atomically."""
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
                        self._fetch_url(source, fh, spec)
                    else:
                        self._copy_file(Path(source), fh)
                    fh.flush()
                    self._check(name, tmp, source)
                    os.replace(tmp, dest)
            except _CacheFolderError:
                raise
            except (
                WeightsError, OSError, urllib.error.URLError, http.client.HTTPException, ValueError
            ) as exc:
                # HTTPException: a body cut short (IncompleteRead) or a garbled answer.
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{source}: {reason}")
                log.info("could not get %s from %s: %s", spec.file, source, reason)
                continue
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
            except _CacheFolderError:
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
            self._copy_file(src, fh)
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
            raise _cache_error(dest.parent, exc) from None
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
            raise _cache_error(folder, exc) from None

    def _fetch_url(self, url: str, fh: IO[bytes], spec: WeightSpec) -> None:
        from tqdm import tqdm

        req = urllib.request.Request(url, headers={"User-Agent": "vidrestore"})
        limit = self.expected(spec.name)[0] or MAX_DOWNLOAD
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            announced = _announced_length(resp)
            if announced is not None and announced > limit:
                raise WeightsError(f"the server announces {announced} bytes, more than the "
                                   f"{limit} expected; not downloaded")
            received = 0
            with tqdm(
                total=announced or spec.size, unit="B", unit_scale=True, unit_divisor=1024,
                desc=spec.file, disable=not (self.progress and sys.stderr.isatty()), leave=False,
            ) as bar:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    received += len(block)
                    if received > limit:  # a wrong file or an endless body: stop reading
                        raise WeightsError(f"the server sent more than the {limit} bytes "
                                           "expected; stopped")
                    fh.write(block)
                    bar.update(len(block))
        # http.client ends a fixed-length body silently when the connection drops early.
        if announced is not None and received != announced:
            raise WeightsError(f"received {received} of {announced} bytes the server announced")

    @staticmethod
    def _copy_file(src: Path, fh: IO[bytes]) -> None:
        with open(src, "rb") as f:
            shutil.copyfileobj(f, fh, CHUNK)

    def _check(self, name: str, path: Path, source: str, *, recorded: bool = True) -> None:
        """Size and hash as expected (``recorded=False``: a first-use record is not held
        against the file); a ``.pth`` must at least look like a PyTorch checkpoint."""
        if self.spec(name).file.endswith(".pth") and not _looks_like_checkpoint(path):
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
        p = self.home / RECORD_FILE
        try:
            return json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        except OSError as exc:
            raise _cache_error(self.home, exc) from None

    def _record(self, name: str, path: Path, *, replace: bool = False) -> None:
        """Trust-on-first-use record for entries the manifest does not pin (``replace``: also
        when one is held)."""
        if self.spec(name).verified or (self.expected(name)[1] is not None and not replace):
            return
        recs = self._records()
        recs[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        try:
            write_text_atomic(self.home / RECORD_FILE, json.dumps(recs, indent=2))
        except OutputError as exc:
            raise _cache_error(self.home, exc.__cause__ or exc) from None
        log.warning(
            "%s has no published hash; recorded sha256 %s on first use in %s",
            path.name, recs[name]["sha256"], self.home / RECORD_FILE,
        )

    def _hash_cached(self, path: Path) -> str:
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


def load_codeformer(
    path: Path | str | None = None,
    *,
    store: WeightStore | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> Any:
    """Load CodeFormer from ``path`` (any compatible checkpoint) or the verified file of
    ``store``; one of the two is needed."""
    import torch

    from .models.loader import load_codeformer_checkpoint

    if path is not None:
        resolved = Path(path)
        if not resolved.is_file():
            raise WeightsError(f"{resolved}: no such checkpoint file")
    elif store is not None:
        resolved = store.ensure("codeformer")
    else:
        raise UsageError("load_codeformer: give a checkpoint path or a WeightStore")
    return load_codeformer_checkpoint(resolved, device=device, dtype=dtype or torch.float32)
