"""Contact sheet of a video's face tracks: one tile per track, so IDs are chosen by looking.

Each tile shows a track's best face as the restorer sees it (the aligned crop, from the smoothed
landmarks), with the track's ID, its frame range and length, and notes where the track needs a
look: doubtful alignment (see :mod:`vidrestore.faces.report`), a small face, many bridged frames.

The best face is picked while the frames stream past (:class:`SheetCollector` keeps one crop per
track, never the frames): detected frames before bridged ones, then the highest
``sharpness * frontality**2 * score``, where sharpness is the variance of the Laplacian of the
grey crop's inner face and frontality (0-1) how far the nose tip sits from the eyes' midline
against the eye distance (detector's points where detected).

Geometry is fixed (:func:`tile_boxes`): tiles of ``TILE + 2 * PAD`` by ``TILE + 2 * PAD +
CAPTION`` pixels, ``PER_ROW`` to a row, ``GAP`` apart, below a ``HEADER`` band with the input's
name; everything else is ``BACKGROUND``. The sheet is always 8-bit RGB.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError
from ..io.paths import AtomicOutput, check_output
from .align import affine_scale, similarity_transform, warp_face
from .detectors import to_uint8
from .draw import track_colour
from .records import FrameFaces, TrackedFace
from .report import TrackEntry, TrackReport

TILE = 160
"""Side of a face crop on the sheet, in pixels."""
PER_ROW = 6
PAD = 4
GAP = 12
MARGIN = 12
HEADER = 40
LINE = 16
CAPTION = 4 + 22 + 5 * LINE + 8
"""Room under a crop: the ID line and five text lines (range, length, up to three notes)."""
BACKGROUND = (24, 24, 24)
PANEL = (56, 56, 56)
TEXT = (235, 235, 235)
NOTE = (255, 190, 70)
BRIDGED_SHARE = 0.1
"""A track with at least this share of bridged (interpolated) frames says so on its tile."""
SMALL_FACTOR = 2.0
"""A track whose faces are narrower on average than ``min_face * SMALL_FACTOR`` is noted small."""

_FONT = cv2.FONT_HERSHEY_SIMPLEX
# the inner face of the 512 template (eyes to below the mouth), where sharpness is measured
_INNER = (slice(int(0.36 * TILE), int(0.80 * TILE)), slice(int(0.30 * TILE), int(0.70 * TILE)))


@dataclass(frozen=True)
class Pick:
    """The face a tile shows: its frame, whether it was bridged, its quality and its crop."""

    frame: int
    interpolated: bool
    quality: float
    crop: np.ndarray

    @property
    def rank(self) -> tuple[bool, float]:
        return (not self.interpolated, self.quality)


def frontality(landmarks: np.ndarray) -> float:
    """1 for a face seen from the front, falling to 0 as the nose tip nears an eye's line.

    The nose's offset from the perpendicular bisector of the eyes, against the eye distance:
    ``1 - 2 * offset / eye_distance`` (clipped to 0-1).
    """
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eyes = p[1] - p[0]
    d = float(np.hypot(*eyes))
    if not d > 0:
        return 0.0
    offset = abs(float(np.dot(p[2] - (p[0] + p[1]) / 2, eyes / d)))
    return float(np.clip(1.0 - 2.0 * offset / d, 0.0, 1.0))


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey inner face of an aligned ``TILE`` crop (uint8 RGB)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[_INNER]
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def aligned_crop(pixels: np.ndarray, landmarks: np.ndarray, size: int = TILE) -> np.ndarray:
    """The aligned ``size`` x ``size`` face as 8-bit RGB; a face larger than the crop is warped
    at up to 4x the size and shrunk with an area filter, so it is not aliased."""
    factor = int(np.clip(math.ceil(1.0 / affine_scale(similarity_transform(landmarks, size))),
                         1, 4))
    big = warp_face(pixels, similarity_transform(landmarks, size * factor), size * factor)
    if factor > 1:
        big = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return to_uint8(big)


class SheetCollector:
    """The best face of every track, from the ``FrameFaces`` of a stream as they pass.

    Feed it exactly what the report's collector gets; memory is one crop per track.
    """

    def __init__(self) -> None:
        self._best: dict[int, Pick] = {}

    @property
    def picks(self) -> dict[int, Pick]:
        """Track ID -> the face its tile shows."""
        return dict(self._best)

    def add(self, frame_faces: FrameFaces) -> None:
        for face in frame_faces.faces:
            self._consider(frame_faces.frame.pixels, face)

    def _consider(self, pixels: np.ndarray, face: TrackedFace) -> None:
        old = self._best.get(face.track_id)
        if old is not None and face.interpolated and not old.interpolated:
            return  # a bridged frame never beats a detected one: skip the warp
        points = face.landmarks if face.landmarks_raw is None else face.landmarks_raw
        crop = aligned_crop(pixels, face.landmarks)
        score = 0.5 if face.score is None else float(face.score)
        quality = sharpness(crop) * frontality(points) ** 2 * score
        pick = Pick(face.frame_index, bool(face.interpolated), quality, crop)
        if old is None or pick.rank > old.rank:
            self._best[face.track_id] = pick


# -- drawing ------------------------------------------------------------------------------------


def tile_size() -> tuple[int, int]:
    """Width and height of one tile (panel with crop and caption)."""
    return TILE + 2 * PAD, TILE + 2 * PAD + CAPTION


def tile_boxes(count: int) -> list[tuple[int, int, int, int]]:
    """``(x, y, width, height)`` of the tiles of a sheet with ``count`` tracks, in ID order."""
    w, h = tile_size()
    cols = min(max(count, 1), PER_ROW)
    return [(MARGIN + (i % cols) * (w + GAP), HEADER + (i // cols) * (h + GAP), w, h)
            for i in range(count)]


def notes(track: TrackEntry, min_face: float) -> list[str]:
    """Why a track needs a look: doubtful alignment, a small face, many bridged frames."""
    out = []
    figures = track.alignment()
    if figures["doubtful"]:
        out.append(f"doubtful align ({figures['offset_p95']:.0f} px)")
    width = float(np.mean([f.box[2] - f.box[0] for f in track.frames]))
    if width < min_face * SMALL_FACTOR:
        out.append(f"small ({width:.0f} px)")
    bridged = sum(f.interpolated for f in track.frames)
    if bridged and bridged >= BRIDGED_SHARE * len(track.frames):
        out.append(f"bridged {bridged}")
    return out


def render_sheet(report: TrackReport, picks: Mapping[int, Pick], title: str, *,
                 min_face: float = 20.0) -> np.ndarray:
    """The contact sheet (HxWx3 uint8 RGB) of ``report``'s tracks with the crops of ``picks``."""
    tracks = report.tracks
    boxes = tile_boxes(len(tracks))
    tw, th = tile_size()
    cols = min(max(len(tracks), 1), PER_ROW)
    rows = math.ceil(len(tracks) / cols) if tracks else 0
    n = len(tracks)
    header = (f"{_ascii(title)}: {n} face track{'' if n == 1 else 's'}" if tracks
              else _ascii(title))
    head_w = cv2.getTextSize(header, _FONT, 0.6, 1)[0][0]
    width = max(2 * MARGIN + cols * tw + (cols - 1) * GAP, 2 * MARGIN + head_w)
    height = HEADER + (rows * th + (rows - 1) * GAP if rows else 2 * LINE) + MARGIN
    sheet = np.empty((height, width, 3), np.uint8)
    sheet[:] = BACKGROUND
    _text(sheet, header, (MARGIN, HEADER - 14), 0.6, TEXT)
    if not tracks:
        _text(sheet, "no face tracks", (MARGIN, HEADER + LINE), 0.5, NOTE)
    for track, (x, y, w, h) in zip(tracks, boxes, strict=True):
        sheet[y : y + h, x : x + w] = PANEL
        pick = picks.get(track.id)
        if pick is not None:
            sheet[y + PAD : y + PAD + TILE, x + PAD : x + PAD + TILE] = pick.crop
        ty = y + 2 * PAD + TILE + 4 + 18
        _tag(sheet, f"#{track.id}", (x + PAD, ty), track_colour(track.id))
        lines = [(f"frames {track.frames[0].frame}-{track.frames[-1].frame}", TEXT),
                 (f"{len(track.frames)} frames", TEXT),
                 *((note, NOTE) for note in notes(track, min_face))]
        for k, (line, colour) in enumerate(lines[:5]):
            _text(sheet, line, (x + PAD, ty + 4 + (k + 1) * LINE), 0.42, colour, max_w=TILE)
    return sheet


def _ascii(text: str, limit: int = 80) -> str:
    """What the Hershey fonts can draw: ASCII, long names shortened in the middle."""
    text = text.encode("ascii", "replace").decode("ascii")
    if len(text) > limit:
        text = text[: limit // 2 - 2] + "..." + text[-(limit // 2 - 1):]
    return text


def _tag(image: np.ndarray, text: str, origin: tuple[int, int],
         colour: tuple[int, int, int]) -> None:
    """``text`` on a filled label in ``colour`` (the track's colour in the preview), its
    baseline at ``origin``; dark or light ink, whichever reads on the colour."""
    (w, h), base = cv2.getTextSize(text, _FONT, 0.6, 2)
    x, y = origin
    cv2.rectangle(image, (x, y - h - 3), (x + w + 7, y + base), colour, -1)
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    _text(image, text, (x + 3, y), 0.6, ink, 2)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float,
          colour: tuple[int, int, int], thick: int = 1, max_w: int | None = None) -> None:
    if max_w is not None:  # shrink a line that would run past the tile
        w = cv2.getTextSize(text, _FONT, scale, thick)[0][0]
        if w > max_w:
            scale *= max_w / w
    cv2.putText(image, text, origin, _FONT, scale, colour, thick, cv2.LINE_AA)


# -- writing ------------------------------------------------------------------------------------


def check_sheet_path(path: str | os.PathLike[str]) -> None:
    """Refuse a sheet name that is not a ``.png`` (the sheet is always a PNG)."""
    if Path(path).suffix.lower() != ".png":
        raise OutputError(f"{path}: the contact sheet is a PNG picture; name it .png")


def stage_sheet(path: str | os.PathLike[str], sheet: np.ndarray, *,
                overwrite: bool) -> AtomicOutput:
    """Write ``sheet`` (RGB uint8) as a PNG to a temporary file beside ``path``, for the caller
    to commit with the outputs it belongs to (or discard if they fail)."""
    dst = Path(path)
    check_sheet_path(dst)
    check_output(dst, (), overwrite=overwrite)
    ok, data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"{dst}: cannot encode the contact sheet")
    target = AtomicOutput(dst, overwrite=overwrite)
    try:
        target.tmp.write_bytes(data.tobytes())
    except OSError as exc:
        target.discard()
        raise OutputError(f"{dst}: cannot write the contact sheet ({exc.strerror})") from exc
    return target
