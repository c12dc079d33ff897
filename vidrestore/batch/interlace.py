"""Interlaced sources: deinterlace with FFmpeg's bwdif/yadif, or restore field by field.

``fields`` keeps the output interlaced: each frame is split into its two fields in the order
they were captured; a field is brought to full height (its own lines kept exactly, the other
field's lines interpolated between them) so faces keep their shape for detection and
restoration; after restoration only the field's own lines are taken back and the two fields are
woven into one frame again. Pixels that the restorer leaves alone come back bit for bit.

``bwdif``/``yadif`` run in ``send_frame`` mode (one progressive frame per frame, same timing)
through ``av.filter.Graph``. Both look one frame back and one ahead, so a segment that starts in
the middle of a film feeds the frame before its first one and drops that output (``preroll``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Literal, cast

import av
import numpy as np

from ..errors import UsageError
from ..io.color import FROM_RGB_THREADS, rgb_frame
from ..io.frame import Frame

INTERLACED = ("tt", "bb", "tb", "bt")
FILTERS = ("bwdif", "yadif")
#: How a job treats fields: as they are, deinterlaced by a filter, or restored field by field.
FieldMode = Literal["off", "bwdif", "yadif", "fields"]
_MODES: tuple[FieldMode, ...] = ("off", "bwdif", "yadif", "fields")


def is_interlaced(field_order: str) -> bool:
    """True for FFmpeg's interlaced field orders (``tt``, ``bb``, ``tb``, ``bt``)."""
    return field_order in INTERLACED


def top_field_first(field_order: str) -> bool:
    """Whether the top field (even rows, counting from 0) was captured first."""
    return field_order in ("tt", "tb")


def resolve_mode(mode: str, field_order: str) -> FieldMode:
    """``auto`` -> ``fields`` for interlaced sources, ``off`` otherwise; others as given."""
    if mode == "auto":
        return "fields" if is_interlaced(field_order) else "off"
    for known in _MODES:
        if mode == known:
            return known
    raise UsageError(f"--deinterlace: {mode!r} is not one of auto, off, bwdif, yadif, fields")


def preroll(mode: str) -> int:
    """Frames before a segment's first frame that the stage must see again on resume."""
    return 1 if mode in FILTERS else 0


# -- deinterlacing filters ---------------------------------------------------------------------
def deinterlace(frames: Iterable[Frame], name: str, *, top_first: bool,
                drop: int = 0) -> Iterator[Frame]:
    """Progressive frames from interlaced ones, one per input with its index and pts.

    ``drop`` outputs are discarded at the start (the pre-rolled frames of a resumed segment).
    """
    graph: av.filter.Graph | None = None
    waiting: deque[Frame] = deque()
    fmt = rgb = ""

    def filtered(graph: av.filter.Graph) -> Iterator[Frame]:
        """What the filter has ready, as the frames it came from, minus those to drop."""
        nonlocal drop
        for out in _pull(graph):
            src = waiting.popleft()
            if drop:
                drop -= 1
                continue
            yield src.with_pixels(out.reformat(format=rgb).to_ndarray())

    for frame in frames:
        if graph is None:
            deep = frame.pixels.dtype == np.uint16
            fmt, rgb = ("gbrp16le", "rgb48le") if deep else ("gbrp", "rgb24")
            graph = _graph(name, frame, fmt, top_first)
        video = rgb_frame(frame.pixels).reformat(format=fmt, threads=FROM_RGB_THREADS)
        video.pts = frame.index
        video.time_base = frame.time_base
        graph.push(video)
        waiting.append(frame)
        yield from filtered(graph)
    if graph is None:
        return
    graph.push(None)
    yield from filtered(graph)


def _graph(name: str, first: Frame, fmt: str, top_first: bool) -> av.filter.Graph:
    if name not in FILTERS:
        raise UsageError(f"--deinterlace: {name!r} is not one of {', '.join(FILTERS)}")
    w, h = first.size
    graph = av.filter.Graph()
    src = graph.add_buffer(width=w, height=h, format=av.VideoFormat(fmt),
                           time_base=Fraction(first.time_base))
    parity = "tff" if top_first else "bff"
    flt = graph.add(name, f"mode=send_frame:parity={parity}:deint=all")
    sink = graph.add("buffersink")
    src.link_to(flt)
    flt.link_to(sink)
    graph.configure()
    return graph


def _pull(graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    while True:
        try:
            yield cast("av.VideoFrame", graph.pull())  # the graph has one video sink
        except (av.BlockingIOError, av.EOFError):
            return


# -- field by field ----------------------------------------------------------------------------
def bob(pixels: np.ndarray, parity: int) -> np.ndarray:
    """Full-height picture of one field: its rows kept, the other rows interpolated.

    ``parity`` 0 is the top field (rows 0, 2, 4, ...), 1 the bottom field.
    """
    h = pixels.shape[0]
    field = pixels[parity::2]
    wide = field.astype(np.uint32)
    pairs = ((wide[:-1] + wide[1:] + 1) // 2).astype(pixels.dtype)
    if parity == 0:
        other = np.concatenate([pairs, field[-1:]])[: h // 2]
    else:
        other = np.concatenate([field[:1], pairs, field[-1:]])[: (h + 1) // 2]
    out = np.empty_like(pixels)
    out[parity::2] = field
    out[1 - parity :: 2] = other
    return out


def field_parities(top_first: bool) -> tuple[int, int]:
    """Parities of the first and second field of a frame, in capture order."""
    return (0, 1) if top_first else (1, 0)


def split_fields(frames: Iterable[Frame], *, top_first: bool) -> Iterator[Frame]:
    """Two full-height field pictures per frame, in capture order.

    Field ``k`` (0 or 1) of frame ``i`` gets index ``2i + k`` and pts ``2 pts + k`` in half the
    time base, so indices stay consecutive and times ordered.
    """
    order = field_parities(top_first)
    for f in frames:
        tb = Fraction(f.time_base) / 2
        for k, parity in enumerate(order):
            yield Frame(2 * f.index + k, 2 * f.pts + k, tb, bob(f.pixels, parity))


class Weaver:
    """Joins restored field pictures back into interlaced frames.

    A first field waits in :attr:`pending` for its second field; a resumed segment restores it
    from the snapshot, so fields never straddle a seam unpaired.
    """

    def __init__(self, *, top_first: bool, pending: Frame | None = None) -> None:
        self.order = field_parities(top_first)
        self.pending = pending

    def push(self, field: Frame) -> Frame | None:
        """Take one restored field picture; return the woven frame when both fields are in."""
        k = field.index % 2
        if k == 0:
            if self.pending is not None:
                raise ValueError(f"field picture {field.index} arrived before the second field "
                                 f"of {self.pending.index}")
            self.pending = field
            return None
        first = self.pending
        if first is None or first.index != field.index - 1:
            raise ValueError(f"second field picture {field.index} has no first field")
        self.pending = None
        pixels = np.empty_like(field.pixels)
        p0, p1 = self.order
        pixels[p0::2] = first.pixels[p0::2]
        pixels[p1::2] = field.pixels[p1::2]
        return Frame(field.index // 2, field.pts // 2, Fraction(field.time_base) * 2, pixels)
