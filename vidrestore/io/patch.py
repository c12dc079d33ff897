"""A decoded picture with boxes of it replaced by RGB pixels converted back to its format.

A frame whose faces were pasted back differs from the decoder's picture only around the faces.
Converting the whole frame from RGB back to YUV costs a full-frame conversion and changes the
rest of the picture too: RGB and 4:2:0 YUV do not map one to one (on a real clip 8 % of the
chroma samples and 0.2 % of the luma samples of an untouched frame come back different, by up
to 9 levels). :func:`patch_picture` converts only the boxes that changed, each with a margin of
unchanged pixels so the conversion's chroma filter sees the real neighbours, and keeps every
other sample of the source picture exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .color import rgb_frame
from .frame import Box, Patch, plane_bytes

PLANAR_YUV: dict[str, tuple[int, int, int]] = {
    "yuv420p": (1, 1, 1), "yuvj420p": (1, 1, 1), "yuv422p": (1, 0, 1), "yuvj422p": (1, 0, 1),
    "yuv444p": (0, 0, 1), "yuvj444p": (0, 0, 1), "yuv420p10le": (1, 1, 2),
    "yuv422p10le": (1, 0, 2), "yuv444p10le": (0, 0, 2),
}
"""Formats a picture can be patched in: log2 of the chroma subsampling across and down, and
bytes per sample."""

MARGIN = 8
"""Unchanged pixels converted around each box (chroma filter support, with room to spare)."""


def whole_chroma(picture: Any) -> bool:
    """Whether ``picture`` is in one of :data:`PLANAR_YUV` and its size a whole number of
    chroma samples: else the whole picture's conversion places chroma on a grid a box's
    conversion would not match."""
    shifts = PLANAR_YUV.get(picture.format.name)
    if shifts is None:
        return False
    return not (picture.width % (1 << shifts[0]) or picture.height % (1 << shifts[1]))


def patchable(picture: Any, convert: dict[str, Any]) -> bool:
    """Whether boxes of ``picture`` can be converted back alone with ``convert``
    (``VideoFrame.reformat`` arguments into the picture's own format): :func:`whole_chroma`."""
    return convert.get("format") == picture.format.name and whole_chroma(picture)


def grown_box(box: Box, picture: Any) -> Box | None:
    """``box`` grown by :data:`MARGIN`, then out to whole chroma samples of ``picture`` (a
    :func:`patchable` one) and clipped to it: what :func:`patch_picture` converts back for it
    (None: nothing of it is inside)."""
    sx, sy, _ = PLANAR_YUV[picture.format.name]
    w, h = picture.width, picture.height
    x0, y0, x1, y1 = box
    x0 = max(0, x0 - MARGIN) >> sx << sx
    y0 = max(0, y0 - MARGIN) >> sy << sy
    x1 = min(w, ((x1 + MARGIN + (1 << sx) - 1) >> sx) << sx)
    y1 = min(h, ((y1 + MARGIN + (1 << sy) - 1) >> sy) << sy)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def on_chroma_grid(box: Box, picture: Any) -> bool:
    """Whether ``box`` lies inside ``picture`` (a :func:`patchable` one) on whole chroma
    samples, as a patch of :func:`patch_with` must."""
    sx, sy, _ = PLANAR_YUV[picture.format.name]
    x0, y0, x1, y1 = box
    return (0 <= x0 < x1 <= picture.width and 0 <= y0 < y1 <= picture.height
            and not (x0 % (1 << sx) or x1 % (1 << sx) or y0 % (1 << sy) or y1 % (1 << sy)))


def patch_picture(picture: Any, pixels: np.ndarray, boxes: Sequence[Box],
                  convert: dict[str, Any], reformatter: VideoReformatter) -> Any | None:
    """A copy of ``picture`` with each box of ``pixels`` (HxWx3 RGB of the same size, uint8 or
    uint16), grown by :func:`grown_box`, converted with ``convert`` (``VideoFrame.reformat``
    arguments into the picture's format); ``None`` when the picture is not :func:`patchable`."""
    if not patchable(picture, convert):
        return None
    patches = []
    for box in boxes:
        if (grown := grown_box(box, picture)) is not None:
            x0, y0, x1, y1 = grown
            patches.append((x0, y0, pixels[y0:y1, x0:x1]))
    return patch_with(picture, patches, convert, reformatter)


def patch_with(picture: Any, patches: Sequence[Patch],
               convert: dict[str, Any], reformatter: VideoReformatter) -> Any:
    """A copy of ``picture`` (a :func:`patchable` one) with each patch ``(x0, y0, rgb)`` (on
    whole chroma samples) converted with ``convert`` and written over it."""
    fmt = picture.format.name
    sx, sy, size = PLANAR_YUV[fmt]
    w, h = picture.width, picture.height
    out = av.VideoFrame(w, h, fmt)
    planes = []  # the copy's samples, written in place
    for src, dst in zip(picture.planes, out.planes, strict=True):
        samples = plane_bytes(dst)[:, :src.width * size]
        samples[:] = plane_bytes(src)[:, :src.width * size]
        planes.append(samples)
    for x0, y0, rgb in patches:
        done = reformatter.reformat(rgb_frame(rgb), **convert)
        for k, (samples, part) in enumerate(zip(planes, done.planes, strict=True)):
            cx, cy = (0, 0) if k == 0 else (sx, sy)
            rows = plane_bytes(part)[:, :part.width * size]
            samples[y0 >> cy:(y0 >> cy) + rows.shape[0],
                    (x0 >> cx) * size:(x0 >> cx) * size + rows.shape[1]] = rows
    out.colorspace, out.color_range = picture.colorspace, picture.color_range
    return out
