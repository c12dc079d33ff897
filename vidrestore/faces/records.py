"""Plain records passed between the face stages: detections, tracked faces, per-frame results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.frame import Frame


def _as_box(value: np.ndarray) -> np.ndarray:
    box = np.asarray(value, dtype=np.float32).reshape(-1)
    if box.shape != (4,):
        raise ValueError(f"a box is (x1, y1, x2, y2), got shape {np.shape(value)}")
    return box


def _as_points(value: np.ndarray, what: str) -> np.ndarray:
    points = np.asarray(value, dtype=np.float32)
    if points.shape != (5, 2):
        raise ValueError(f"{what} must be 5 (x, y) points, got shape {np.shape(value)}")
    return points


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found in one image, in that image's pixel coordinates.

    ``landmarks`` are in template order: image-left eye, image-right eye, nose tip,
    image-left mouth corner, image-right mouth corner.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _as_box(self.box))
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "landmarks", _as_points(self.landmarks, "landmarks"))

    @property
    def width(self) -> float:
        """Box width in pixels (the size ``min_face`` is compared with)."""
        return float(self.box[2] - self.box[0])

    def moved(self, scale: float = 1.0, offset: tuple[float, float] = (0.0, 0.0)) -> Detection:
        """The detection mapped from a resized/cropped image back to the full frame.

        ``scale`` is the resize factor that was applied to the frame (working = frame * scale,
        pixel centres aligned) and ``offset`` the crop's top-left corner in frame pixels.
        """
        ox, oy = offset
        shift = np.array([ox, oy], dtype=np.float64)
        pts = (self.landmarks.astype(np.float64) + 0.5) / scale - 0.5 + shift
        corners = self.box.astype(np.float64).reshape(2, 2) / scale + shift
        return Detection(corners.reshape(4), self.score, pts)


@dataclass(frozen=True, slots=True)
class TrackedFace:
    """One face of one track on one frame.

    ``landmarks`` are the smoothed points every later stage aligns with; ``landmarks_raw`` and
    ``score`` are the detector's own values, ``None`` where the frame was bridged
    (``interpolated``) because the detector missed the face there, or did not run there
    (``detect_every``: the face followed by its registration). ``weight`` (0..1) is how
    much of the restored face is pasted back: 0 for a profile, failed landmarks or a track that
    has not earned restoration, fading in and out over a few frames (see :mod:`.track`).
    ``held``: the picture repeats the frame before (:class:`~.cuts.HeldFrames`), and
    ``landmarks`` are that frame's.
    """

    track_id: int
    frame_index: int
    box: np.ndarray
    score: float | None
    landmarks_raw: np.ndarray | None
    landmarks: np.ndarray
    interpolated: bool
    weight: float = 1.0
    held: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _as_box(self.box))
        object.__setattr__(self, "weight", float(np.clip(self.weight, 0.0, 1.0)))
        object.__setattr__(self, "landmarks", _as_points(self.landmarks, "landmarks"))
        if self.landmarks_raw is not None:
            raw = _as_points(self.landmarks_raw, "landmarks_raw")
            object.__setattr__(self, "landmarks_raw", raw)


@dataclass(frozen=True, slots=True)
class FrameFaces:
    """A frame with its final faces; ``cut`` marks the first frame of a new scene, ``held`` a
    picture that repeats the frame before (:class:`~.cuts.HeldFrames`: its faces have not
    moved)."""

    frame: Frame
    faces: list[TrackedFace]
    cut: bool
    held: bool = False


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
