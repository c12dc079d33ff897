"""Between a frame as stored and the upright picture it is displayed as.

A phone video shot in portrait is usually stored landscape, with a display matrix that turns it
when shown. :attr:`VideoInfo.rotation` is that turn, counter-clockwise in degrees (as FFmpeg's
``av_display_rotation_get`` and PyAV's ``frame.rotation`` give it; ffprobe shows 90 or -90 for
such clips, the probe keeps it in 0-359). ``np.rot90`` also turns counter-clockwise, so
``np.rot90(stored, rotation // 90)`` is the picture as displayed. Frames keep their stored
orientation from reader to writer (the output keeps the stored size and the matrix); the face
stage looks at the upright picture, where detectors find faces and where a user expects the
coordinates of a report.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .frame import Frame

log = logging.getLogger(__name__)

_warned: set[tuple[str, int]] = set()


def quarter_turns(rotation: int, source: object = None) -> int:
    """Counter-clockwise quarter turns (0-3) that make stored pixels upright.

    A rotation that is not a multiple of 90 degrees cannot be undone by turning pixels: it gives
    0 (the stored picture is used as it is), with a warning once per source and rotation.
    """
    if rotation % 90 == 0:
        return (rotation // 90) % 4
    key = (str(source or ""), rotation)
    if key not in _warned:
        _warned.add(key)
        where = f"{source}: " if source else ""
        log.warning("%sdisplay rotation %d is not a quarter turn; faces are found in the stored "
                    "picture", where, rotation)
    return 0


def upright(pixels: np.ndarray, turns: int) -> np.ndarray:
    """The stored pixels turned upright, contiguous (a copy when turned, for OpenCV)."""
    if turns % 4 == 0:
        return pixels
    return np.ascontiguousarray(np.rot90(pixels, turns))


def upright_view(pixels: np.ndarray, turns: int) -> np.ndarray:
    """The upright picture as a view of the stored pixels: writing into it writes them.

    Not contiguous when turned; fine for NumPy and for OpenCV inputs, not for OpenCV outputs.
    """
    return np.rot90(pixels, turns % 4)


def stored(pixels: np.ndarray, turns: int) -> np.ndarray:
    """Upright pixels turned back to the stored orientation, contiguous."""
    if turns % 4 == 0:
        return pixels
    return np.ascontiguousarray(np.rot90(pixels, -turns))


def upright_frame(frame: Frame, turns: int) -> Frame:
    """The frame with upright pixels (the frame itself when no turn is needed)."""
    if turns % 4 == 0:
        return frame
    return Frame(frame.index, frame.pts, frame.time_base, upright(frame.pixels, turns))


def upright_size(width: int, height: int, turns: int) -> tuple[int, int]:
    """(width, height) of the upright picture of a stored ``width`` x ``height`` frame."""
    return (height, width) if turns % 2 else (width, height)


def display_facts(info: Any) -> dict[str, Any]:
    """Report facts saying in which picture face coordinates are given.

    ``coordinates`` is ``"display"`` (the upright picture, ``display_width`` x
    ``display_height`` pixels) for a quarter turn or none, else ``"stored"`` (the frame as
    decoded, ``width`` x ``height``).
    """
    rotation = int(getattr(info, "rotation", 0) or 0)
    if rotation % 90:
        return {"coordinates": "stored"}
    width, height = upright_size(int(info.width), int(info.height), quarter_turns(rotation))
    return {"coordinates": "display", "display_width": width, "display_height": height}
