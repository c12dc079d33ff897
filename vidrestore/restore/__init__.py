"""Restoration: frames in, frames with their faces restored out.

:class:`Restorer` is the frame-iterator form (any host: a node graph, a pipe, a batch segment);
:func:`restore_video` runs it from a file to a file with sound, timing and format kept, and
:func:`preview_video` restores a few frames to pictures. The stages are modules of their own:
:mod:`.engine` (the network in batches, temporal modes), :mod:`.blend` (paste-back),
:mod:`.masks`, :mod:`.temporal`, :mod:`.tracksettings`, :mod:`.snapshot` (resumable state).

The names are imported on first use, so that importing an option class (``RestoreOptions``, as
the command line does for ``--help``) does not pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import RestoreSummary, restore_video
    from .options import RestoreOptions
    from .pipeline import Restorer
    from .preview import PreviewSummary, preview_video
    from .tracksettings import TrackSetting

_LAZY = {
    "RestoreSummary": ".api", "restore_video": ".api", "RestoreOptions": ".options",
    "Restorer": ".pipeline", "PreviewSummary": ".preview", "preview_video": ".preview",
    "TrackSetting": ".tracksettings",
}

__all__ = [
    "PreviewSummary",
    "RestoreOptions",
    "RestoreSummary",
    "Restorer",
    "TrackSetting",
    "preview_video",
    "restore_video",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
