"""Looking for small faces without a full-resolution pass on every frame.

A detector finds faces down to about ``MIN_DETECT_PX`` pixels in the picture it sees. Faces
smaller than that at the working size are found by :func:`detect_tiles` (the frame at a finer
scale, cut into ``detect_size`` tiles) and then followed by :func:`detect_regions` (a small crop
around each such face at full resolution). :class:`~vidrestore.faces.stream.FaceStream` decides
when to use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..records import Detection
from .base import FaceDetector, nms, resize_by


def detect_tiles(
    detector: FaceDetector, image: np.ndarray, scale: float, overlap: int
) -> list[Detection]:
    """Faces in ``image`` looked for at ``scale`` in overlapping ``detect_size`` tiles.

    ``overlap`` (pixels at ``scale``) should exceed the largest face the scan is meant for, so
    each such face lies whole in at least one tile. Results are in frame pixels, merged by NMS.
    """
    scaled = resize_by(image, scale)
    h, w = scaled.shape[:2]
    tile = detector.detect_size
    step = max(1, tile - overlap)
    xs = _starts(w, tile, step)
    ys = _starts(h, tile, step)
    crops, offsets = [], []
    for y in ys:
        for x in xs:
            crops.append(scaled[y : y + tile, x : x + tile])
            offsets.append((x, y))
    found: list[Detection] = []
    for dets, (x, y) in zip(detector.detect(crops), offsets, strict=True):
        found.extend(d.moved(1.0, (x, y)).moved(scale) for d in dets)
    return nms(found, detector.nms_threshold)


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / step)
    return sorted({min(i * step, length - tile) for i in range(n + 1)})


def detect_regions(
    detector: FaceDetector,
    image: np.ndarray,
    boxes: Sequence[np.ndarray],
    *,
    context: float = 1.5,
    target: float = 96.0,
) -> list[list[Detection]]:
    """Faces near each expected ``box``, looked for in a crop around it at a fine scale.

    The crop spans ``context`` box widths on each side of the box centre and is sampled so the
    face is about ``target`` pixels wide (never enlarged). Results are in frame pixels.
    """
    h, w = image.shape[:2]
    crops: list[np.ndarray | None] = []
    places: list[tuple[float, int, int]] = []
    for box in boxes:
        x1, y1, x2, y2 = (float(v) for v in box)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = context * max(x2 - x1, y2 - y1, 1.0)
        left, top = max(0, int(cx - half)), max(0, int(cy - half))
        right, bottom = min(w, math.ceil(cx + half)), min(h, math.ceil(cy + half))
        if right - left < 8 or bottom - top < 8:
            crops.append(None)
            places.append((0.0, left, top))
            continue
        scale = min(1.0, target / max(x2 - x1, 1.0))
        crops.append(resize_by(image[top:bottom, left:right], scale))
        places.append((scale, left, top))
    todo = [i for i, c in enumerate(crops) if c is not None]
    found = detector.detect([c for c in crops if c is not None]) if todo else []
    out: list[list[Detection]] = [[] for _ in boxes]
    for i, dets in zip(todo, found, strict=True):
        scale, left, top = places[i]
        out[i] = [d.moved(scale, (left, top)) for d in dets]
    return out
