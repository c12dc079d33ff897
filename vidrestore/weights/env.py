"""Where the cache is: ``$VIDRESTORE_HOME``, ``$VIDRESTORE_MIRROR``, ``$VIDRESTORE_OFFLINE``,
and the one error for a cache folder that cannot be used."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import WeightsError

HOME_ENV = "VIDRESTORE_HOME"
MIRROR_ENV = "VIDRESTORE_MIRROR"
OFFLINE_ENV = "VIDRESTORE_OFFLINE"


class CacheFolderError(WeightsError):
    """The cache folder cannot be created, read or written: no source can help."""


def cache_error(folder: Path, exc: BaseException) -> CacheFolderError:
    """One line naming the cache folder and the system's reason."""
    why = exc.strerror if isinstance(exc, OSError) else None
    return CacheFolderError(
        f"cache folder {folder} is not usable ({why or exc}); "
        f"set ${HOME_ENV} to a writable folder"
    )


def user_cache_home() -> Path:
    """The platform's user cache folder for model files."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("vidrestore")) / "weights"


def default_home() -> Path:
    """``$VIDRESTORE_HOME``, else the platform's user cache folder."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else user_cache_home()


def offline_from_env() -> bool:
    """Whether ``$VIDRESTORE_OFFLINE`` asks for no network (1, true, yes or on)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


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
