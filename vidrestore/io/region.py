"""Exact RGB of a box of a decoded picture, without converting the whole picture.

A restored frame changes only around its faces, so only those boxes need the exact (and
costly: 6-10 ms a 1080p frame) YUV -> RGB conversion; the face stream finds and follows
faces in a fast conversion of the whole picture. A box is cut out of the decoded picture by
FFmpeg's ``crop`` filter, which moves the planes' pointers and keeps the picture's properties
(the chroma siting among them: a copy of the samples into a new picture loses it, and swscale
then places chroma elsewhere, up to 9 levels off), grown by a margin so the conversion's chroma
filter sees the real neighbours, and converted with the reader's flags: the result equals the
same box of the whole picture's conversion, bit for bit (``tests/test_io_region.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from fractions import Fraction
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .color import EXACT_RGB
from .frame import Box
from .patch import PLANAR_YUV, grown_box, whole_chroma

STEP = 32
"""Crop sizes are rounded up to this, so a face's boxes of the next frames reuse one filter."""

_GRAPHS = 16  # crop filters kept (a few faces, a few sizes each)


def supports_regions(picture: Any) -> bool:
    """Whether :class:`PictureRegions` converts boxes of ``picture`` exactly: 8-bit planar YUV
    of a :func:`~vidrestore.io.patch.whole_chroma` size."""
    return whole_chroma(picture) and PLANAR_YUV[picture.format.name][2] == 1


class PictureRegions:
    """Converts boxes of decoded pictures to RGB as the reader converts whole ones (8-bit,
    :data:`~vidrestore.io.color.EXACT_RGB`); safe across threads."""

    def __init__(self) -> None:
        self._graphs: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
        self._reformatter = VideoReformatter()
        self._lock = threading.Lock()

    def __call__(self, picture: Any, box: Box) -> np.ndarray:
        """RGB ``uint8`` pixels of ``box`` (``x0, y0, x1, y1``, end exclusive, inside the
        picture) of ``picture``, a new array."""
        x0, y0, x1, y1 = box
        w, h = picture.width, picture.height
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"box {box} is not inside the {w}x{h} picture")
        # grown as the writer grows a box it converts back (the chroma filter's support)
        grown = grown_box(box, picture)
        assert grown is not None  # the box is inside
        cx0, cx1 = _stepped(grown[0], grown[2], w)
        cy0, cy1 = _stepped(grown[1], grown[3], h)
        with self._lock:
            graph, crop = self._graph(picture, cx1 - cx0, cy1 - cy0)
            crop.process_command("x", str(cx0))
            crop.process_command("y", str(cy0))
            graph.vpush(picture)
            part = graph.vpull()
            rgb = self._reformatter.reformat(part, format="rgb24",
                                             interpolation=EXACT_RGB).to_ndarray()
        return np.array(rgb[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0])

    def _graph(self, picture: Any, width: int, height: int) -> tuple[Any, Any]:
        """A ``buffer -> crop -> buffersink`` graph for pictures like ``picture`` and crops of
        this size (most recently used kept)."""
        key = (picture.width, picture.height, picture.format.name, width, height)
        found = self._graphs.get(key)
        if found is not None:
            self._graphs.move_to_end(key)
            return found
        graph = av.filter.Graph()
        src = graph.add_buffer(width=picture.width, height=picture.height,
                               format=picture.format, time_base=Fraction(1, 90000))
        crop = graph.add("crop", f"w={width}:h={height}:x=0:y=0:exact=1")
        sink = graph.add("buffersink")
        src.link_to(crop)
        crop.link_to(sink)
        graph.configure()
        self._graphs[key] = (graph, crop)
        if len(self._graphs) > _GRAPHS:
            self._graphs.popitem(last=False)
        return graph, crop


def _stepped(lo: int, hi: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` (on whole chroma samples of a ``size`` that is too) with its length rounded
    up to :data:`STEP`, moved back inside ``[0, size)`` where that would pass the edge."""
    length = min(-(-(hi - lo) // STEP) * STEP, size)
    lo = min(lo, size - length)
    return lo, lo + length
