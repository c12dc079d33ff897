"""The frame record that flows through every stage."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

Converter = Callable[[Any], np.ndarray]
RegionConverter = Callable[[Any, tuple[int, int, int, int]], np.ndarray]
Box = tuple[int, int, int, int]
Patch = tuple[int, int, np.ndarray]


class Frame:
    """One decoded picture with its exact presentation time.

    ``pixels`` is HxWx3 RGB, ``uint8`` for 8-bit sources and ``uint16`` (full 16-bit scale)
    for deeper ones. ``pts`` counts ``time_base`` units; no stage does fps arithmetic.

    ``source`` is the picture as the decoder gave it (a PyAV ``VideoFrame``), kept while
    ``pixels`` are that picture's: a writer encodes it directly, so frames nobody changed skip
    the RGB round trip and come back with the source's exact values. Given ``convert``, the RGB
    conversion waits for the first use of ``pixels``. :meth:`with_pixels` drops the source;
    :meth:`patched` keeps it with ``changed``, the boxes ``(x0, y0, x1, y1)`` outside which the
    pixels are still the picture's, so a writer converts only those boxes back and the rest of
    the picture keeps the source's exact values. Frames are immutable.

    A reader may also give ``analysis``, a cheaper RGB conversion of the picture that finding
    and following faces use (:attr:`analysis`), and ``region``, which converts boxes of the
    picture exactly as ``convert`` converts it whole (:meth:`region`); :meth:`with_patches`
    then makes the restored frame from boxes alone, and the whole picture is never converted
    unless somebody asks for its ``pixels``.
    """

    __slots__ = ("_analysis", "_convert", "_patches", "_pixels", "_region", "changed", "index",
                 "pts", "source", "time_base")

    index: int
    pts: int
    time_base: Fraction
    source: Any
    changed: tuple[Box, ...] | None
    _pixels: np.ndarray | None
    _convert: Converter | None
    _analysis: np.ndarray | None
    _region: RegionConverter | None
    _patches: tuple[Patch, ...] | None

    def __init__(self, index: int, pts: int, time_base: Fraction,
                 pixels: np.ndarray | None = None, *, source: Any = None,
                 convert: Converter | None = None,
                 changed: tuple[Box, ...] | None = None,
                 analysis: np.ndarray | None = None,
                 region: RegionConverter | None = None,
                 patches: tuple[Patch, ...] | None = None) -> None:
        if pixels is None and (source is None or convert is None):
            raise ValueError("a Frame needs pixels, or a source picture and its converter")
        if changed is not None and (source is None or (pixels is None and patches is None)):
            raise ValueError("changed boxes need the source picture and the new pixels")
        if patches is not None and (changed is None or pixels is not None):
            raise ValueError("patches come with their changed boxes, instead of pixels")
        if (analysis is not None or region is not None) and source is None:
            raise ValueError("analysis pixels and regions are a source picture's")
        for p in (pixels, analysis, *(p for _, _, p in patches or ())):
            if p is not None:
                _check(p)
        for name, value in (("index", index), ("pts", pts), ("time_base", time_base),
                            ("source", source), ("changed", changed), ("_pixels", pixels),
                            ("_convert", None if pixels is not None else convert),
                            ("_analysis", analysis),
                            ("_region", None if pixels is not None else region),
                            ("_patches", patches)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Frame is immutable (cannot set {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        # The source picture travels too: a restored snapshot must encode as the original would.
        # (A patched frame travels as its pixels alone, which encode to the same picture.)
        keep = self.source is not None and self.changed is None
        state = picture_state(self.source) if keep else None
        analysis = self._analysis if keep else None
        return rebuild_frame, (self.index, self.pts, self.time_base, self.pixels, state,
                               analysis)

    def __repr__(self) -> str:
        w, h = self.size
        return f"Frame(index={self.index}, pts={self.pts}, time_base={self.time_base}, {w}x{h})"

    @property
    def pixels(self) -> np.ndarray:
        """HxWx3 RGB (converted from ``source`` on first use when it was deferred)."""
        pixels = self._pixels
        if pixels is None:
            convert = self._convert
            assert convert is not None  # kept until the deferred pixels exist
            pixels = convert(self.source)
            _check(pixels)
            if self._patches:
                if not pixels.flags.writeable:
                    pixels = np.array(pixels)
                _overlay(pixels, self._patches)
            object.__setattr__(self, "_pixels", pixels)
            object.__setattr__(self, "_convert", None)
            object.__setattr__(self, "_region", None)
        return pixels

    @property
    def analysis(self) -> np.ndarray:
        """RGB pixels to find and follow faces in: the reader's cheaper conversion where it
        gave one, else :attr:`pixels`."""
        return self._analysis if self._analysis is not None else self.pixels

    @property
    def has_analysis(self) -> bool:
        """Whether :attr:`analysis` is a conversion of its own (snapshots keep it)."""
        return self._analysis is not None

    @property
    def patches(self) -> tuple[Patch, ...] | None:
        """``(x0, y0, rgb)`` boxes of a frame made by :meth:`with_patches` whose whole pixels
        nobody asked for yet (a writer converts just these); None otherwise."""
        return self._patches if self._pixels is None else None

    @property
    def regions(self) -> bool:
        """Whether :meth:`region` converts boxes alone (the whole picture is not converted)."""
        return self._region is not None  # dropped once the whole picture is

    def region(self, box: Box) -> np.ndarray:
        """A new array of the RGB pixels of ``box`` (``x0, y0, x1, y1``, end exclusive, inside
        the frame): the same values as that box of :attr:`pixels`."""
        x0, y0, x1, y1 = box
        convert = self._region
        if convert is not None:
            part = convert(self.source, box)
            _check(part)
            return part
        return np.array(self.pixels[y0:y1, x0:x1])

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        if self._pixels is None:
            return int(self.source.width), int(self.source.height)
        return int(self._pixels.shape[1]), int(self._pixels.shape[0])

    def with_pixels(self, pixels: np.ndarray) -> Frame:
        """The same frame (index, pts) carrying other pixels."""
        return Frame(self.index, self.pts, self.time_base, pixels)

    def renumbered(self, index: int) -> Frame:
        """The same picture (pts, pixels, source, analysis) as frame ``index``."""
        return Frame(index, self.pts, self.time_base, self._pixels, source=self.source,
                     convert=self._convert, changed=self.changed, analysis=self._analysis,
                     region=self._region, patches=self._patches if self._pixels is None
                     else None)

    def patched(self, pixels: np.ndarray, boxes: tuple[Box, ...]) -> Frame:
        """The same frame carrying ``pixels`` that equal this frame's outside ``boxes``
        (``x0, y0, x1, y1``, end exclusive): the source picture is kept for the rest."""
        if self.source is None or pixels.shape != self.pixels.shape:
            return self.with_pixels(pixels)
        return Frame(self.index, self.pts, self.time_base, pixels, source=self.source,
                     changed=(*(self.changed or ()), *boxes))

    def with_patches(self, patches: tuple[Patch, ...]) -> Frame:
        """The same frame with the RGB ``patches`` ``(x0, y0, rgb)`` (disjoint, made from
        :meth:`region`) written over it, the source picture kept for the rest. Its
        :attr:`pixels` are converted only when asked for; a writer converts the patches alone."""
        boxes = tuple(patch_box(p) for p in patches)
        if self._pixels is not None or self.source is None or self._convert is None \
                or self.changed is not None:
            pixels = np.array(self.pixels)
            _overlay(pixels, patches)
            return self.patched(pixels, boxes)
        return Frame(self.index, self.pts, self.time_base, source=self.source,
                     convert=self._convert, changed=boxes, patches=patches)


def patch_box(patch: Patch) -> Box:
    """The box ``(x0, y0, x1, y1)`` a patch ``(x0, y0, rgb)`` covers."""
    x0, y0, rgb = patch
    return x0, y0, x0 + rgb.shape[1], y0 + rgb.shape[0]


def _overlay(pixels: np.ndarray, patches: tuple[Patch, ...]) -> None:
    for x0, y0, rgb in patches:
        pixels[y0:y0 + rgb.shape[0], x0:x0 + rgb.shape[1]] = rgb


def _check(p: np.ndarray) -> None:
    if p.ndim != 3 or p.shape[2] != 3 or p.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"Frame pixels must be HxWx3 uint8 or uint16, got {p.shape} {p.dtype}")


def plane_bytes(plane: Any) -> np.ndarray:
    """A picture plane's memory as (height, line_size) bytes, padding included: a view that
    writes into the picture."""
    return np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)


def picture_state(picture: Any) -> tuple[str, int, int, list[np.ndarray]]:
    """A decoded picture's format, size and plane rows (with their padding), for snapshots and
    pickling."""
    planes = [plane_bytes(p).copy() for p in picture.planes]
    return picture.format.name, picture.width, picture.height, planes


def rebuild_frame(index: int, pts: int, time_base: Fraction, pixels: np.ndarray,
                  state: tuple[str, int, int, list[np.ndarray]] | None,
                  analysis: np.ndarray | None = None) -> Frame:
    """The frame :func:`picture_state` (and the pixels, and the analysis pixels) describe."""
    if state is None:
        return Frame(index, pts, time_base, pixels)
    import av

    fmt, width, height, rows = state
    picture = av.VideoFrame(width, height, fmt)
    for plane, saved in zip(picture.planes, rows, strict=True):
        buf = np.zeros((plane.height, plane.line_size), np.uint8)
        n = min(plane.line_size, saved.shape[1])
        buf[:, :n] = saved[:, :n]
        plane.update(buf.tobytes())
    return Frame(index, pts, time_base, pixels, source=picture, analysis=analysis)
