"""Getting bytes: an HTTP download with size limits and a progress bar, or a local copy.

Both write into an open file the store staged; checking what arrived is the store's job.
"""

from __future__ import annotations

import shutil
import sys
import urllib.request
from pathlib import Path
from typing import IO, Any

from ..errors import WeightsError

CHUNK = 1 << 20
TIMEOUT_S = 30.0
MAX_DOWNLOAD = 2 << 30
"""Bytes read at most for a model whose size is not known (the largest known is ~0.4 GB)."""


def announced_length(resp: Any) -> int | None:
    """The body size the server announced, if any (a chunked body's Content-Length is void)."""
    if "chunked" in (resp.headers.get("Transfer-Encoding") or "").lower():
        return None
    try:
        n = int(resp.headers.get("Content-Length") or "")
    except ValueError:
        return None
    return n if n >= 0 else None


def fetch_url(url: str, fh: IO[bytes], *, limit: int | None, size: int | None, desc: str,
              progress: bool) -> None:
    """Stream ``url`` into ``fh``, reading at most ``limit`` bytes (default
    :data:`MAX_DOWNLOAD`); ``size`` is the bar's total when the server announces none."""
    from tqdm import tqdm

    limit = limit or MAX_DOWNLOAD
    req = urllib.request.Request(url, headers={"User-Agent": "vidrestore"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        announced = announced_length(resp)
        if announced is not None and announced > limit:
            raise WeightsError(f"the server announces {announced} bytes, more than the "
                               f"{limit} expected; not downloaded")
        received = 0
        with tqdm(
            total=announced or size, unit="B", unit_scale=True, unit_divisor=1024,
            desc=desc, disable=not (progress and sys.stderr.isatty()), leave=False,
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


def copy_file(src: Path, fh: IO[bytes]) -> None:
    """Copy a local file (a mirror folder's, or one the user imports) into ``fh``."""
    with open(src, "rb") as f:
        shutil.copyfileobj(f, fh, CHUNK)


def looks_like_checkpoint(path: Path) -> bool:
    """``torch.save``'s zip archive, or its older pickle stream (not an HTML error page)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"
