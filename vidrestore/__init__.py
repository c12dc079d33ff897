"""vidrestore: temporally stable CodeFormer face restoration for video files.

The public API is imported lazily so that ``vidrestore --version`` and the weights commands do not
pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "restore_video": "vidrestore.restore.api",
    "Restorer": "vidrestore.restore",
    "RestoreOptions": "vidrestore.restore.options",
    "track_video": "vidrestore.faces.api",
    "preview_video": "vidrestore.restore.preview",
    "VideoReader": "vidrestore.io",
    "VideoWriter": "vidrestore.io",
    "load_restorer": "vidrestore.models",
    "RestorerDescriptor": "vidrestore.models",
    "load_codeformer": "vidrestore.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vidrestore' has no attribute {name!r}")
