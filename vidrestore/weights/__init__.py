"""Model files: the manifest, the local cache, verified downloads and imports.

Every file vidrestore can use has one manifest entry (``vidrestore/manifest.json``): file name,
size, SHA-256, licence, origin and the URLs it is published at. A :class:`WeightStore` hands out
verified files; it never builds a network (the model side asks it for a path, see
:func:`vidrestore.models.load_restorer`). Its seams, one module each:

- :mod:`.manifest`: the entries (:class:`WeightSpec`);
- :mod:`.env`: ``$VIDRESTORE_HOME`` (default: the user's cache folder), ``$VIDRESTORE_MIRROR``,
  ``$VIDRESTORE_OFFLINE``, read once where a host starts (:meth:`WeightStore.from_env`);
- :mod:`.fetch`: HTTP downloads and local copies;
- :mod:`.records`: hashes and trust-on-first-use records for entries without a published hash;
- :mod:`.store`: the cache itself (:class:`WeightStore`).
"""

from .env import (
    HOME_ENV,
    MIRROR_ENV,
    OFFLINE_ENV,
    default_home,
    mirrors_from_env,
    offline_from_env,
    user_cache_home,
)
from .fetch import CHUNK, MAX_DOWNLOAD, TIMEOUT_S
from .manifest import MANIFEST_PATH, WeightSpec, load_manifest
from .records import RECORD_FILE, sha256_file
from .store import STALE_PART_S, WeightStatus, WeightStore

__all__ = [
    "CHUNK",
    "HOME_ENV",
    "MANIFEST_PATH",
    "MAX_DOWNLOAD",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "RECORD_FILE",
    "STALE_PART_S",
    "TIMEOUT_S",
    "WeightSpec",
    "WeightStatus",
    "WeightStore",
    "default_home",
    "load_manifest",
    "mirrors_from_env",
    "offline_from_env",
    "sha256_file",
    "user_cache_home",
]
