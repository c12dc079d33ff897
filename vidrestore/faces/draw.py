"""Preview drawing: each tracked face's box, ID and landmarks on a copy of the frame."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .records import TrackedFace

# distinct, saturated RGB colours; a track keeps its colour for its whole life
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """The RGB colour a track is drawn in."""
    return PALETTE[(track_id - 1) % len(PALETTE)]


def draw_faces(
    pixels: np.ndarray, faces: Sequence[TrackedFace], *, raw: bool = True
) -> np.ndarray:
    """A copy of ``pixels`` (RGB uint8/uint16) with every face drawn.

    Box and ``#ID`` label in the track's colour (thin box on bridged frames, where the detector
    missed the face), smoothed landmarks as dots and, with ``raw``, the detector's landmarks as
    small crosses. Line widths follow the frame size.
    """
    out: np.ndarray = np.ascontiguousarray(pixels).copy()
    unit = 257 if out.dtype == np.uint16 else 1
    h, w = out.shape[:2]
    thick = max(1, round(min(w, h) / 360))
    for face in faces:
        colour = tuple(c * unit for c in track_colour(face.track_id))
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1 if face.interpolated else 2 * thick,
                      cv2.LINE_AA)
        label = f"#{face.track_id}" + ("" if face.score is None else f" {face.score:.2f}")
        _label(out, label, (x1, y1), track_colour(face.track_id), thick, unit)
        r = max(2, round((x2 - x1) / 60))
        for x, y in face.landmarks:
            cv2.circle(out, (round(float(x)), round(float(y))), r, colour, -1, cv2.LINE_AA)
        if raw and face.landmarks_raw is not None:
            white = (255 * unit,) * 3
            for x, y in face.landmarks_raw:
                cv2.drawMarker(out, (round(float(x)), round(float(y))), white,
                               cv2.MARKER_TILTED_CROSS, 2 * r + 2, 1, cv2.LINE_AA)
    return out


def _label(out: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int],
           thick: int, unit: int) -> None:
    """A filled tag with ``text`` just above ``corner`` (drawn in 8 bits, then scaled: OpenCV
    writes text on 8-bit pictures only)."""
    scale = 0.4 * thick + 0.1
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    tag = np.empty((th + base + 3, tw + 4, 3), np.uint8)
    tag[:] = colour
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    cv2.putText(tag, text, (2, th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thick, cv2.LINE_AA)
    h, w = out.shape[:2]
    x, y = corner[0], max(corner[1] - tag.shape[0], 0)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + tag.shape[1], w), min(y + tag.shape[0], h)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = tag[y0 - y : y1 - y, x0 - x : x1 - x].astype(out.dtype) * unit
