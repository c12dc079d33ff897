"""What every face detector shares: the 8-bit working picture, the shrink to ``detect_size``,
the sampling-grid dither, NMS, and the :class:`FaceDetector` interface.

A detector takes a batch of RGB images (``uint8`` or ``uint16``; 16-bit pictures are scaled to
8 bits for detection) and returns, per image, the faces it finds in that image's pixels. Each
image larger than ``detect_size`` on its long side is shrunk to it first, so a 4K frame costs
about what a 640-pixel one does; coordinates are mapped back to the full frame.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import cv2
import numpy as np

from ..records import Detection, box_iou

MIN_DETECT_PX = 16
"""Smallest face width (pixels of the picture a detector sees) found reliably."""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The 8-bit view a detector works on (16-bit pixels are scaled, rounding)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise ValueError(f"detectors take uint8 or uint16 RGB images, got {image.dtype}")


def working_scale(width: int, height: int, detect_size: int) -> float:
    """Factor a ``width`` x ``height`` picture is shrunk by before detection (1 = not shrunk)."""
    return min(1.0, detect_size / max(width, height))


def resize_by(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (area filter when shrinking)."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp)


DITHER_PERIOD = 32
"""Largest stride of the detectors' feature grids (pixels); shifts are taken below it."""


def dither_shift(index: int) -> tuple[int, int]:
    """A per-frame shift of the detector's sampling grid, spread evenly over the grid period.

    A CNN detector's landmark error depends on where the face sits on its stride grid (8, 16,
    32 pixels), so a slowly moving face gets a slowly changing error that no temporal filter
    can remove. Shifting the picture by a different amount on every frame (an additive
    recurrence with the plastic number, which covers the square evenly) turns that error into
    frame-to-frame noise, which the landmark smoother then averages away.
    """
    g = 1.324717957244746
    p = DITHER_PERIOD
    return int((0.5 + index / g) % 1.0 * p), int((0.5 + index / (g * g)) % 1.0 * p)


def _pad(image: np.ndarray, shift: tuple[int, int] | None) -> np.ndarray:
    """Pad by ``shift`` at the top-left and the rest of a period at the bottom-right, so every
    shifted picture has the same size (the detector keeps its input size)."""
    if shift is None:
        return image
    sx, sy = shift
    p = DITHER_PERIOD
    return cv2.copyMakeBorder(image, sy, p - sy, sx, p - sx, cv2.BORDER_REPLICATE)


def nms(detections: Sequence[Detection], iou: float) -> list[Detection]:
    """Keep the best-scoring of every group of detections overlapping by more than ``iou``."""
    if len(detections) < 2:
        return list(detections)
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    boxes = np.stack([d.box for d in detections])
    overlaps = box_iou(boxes, boxes)
    kept: list[int] = []
    for i in order:
        if all(overlaps[i, j] <= iou for j in kept):
            kept.append(i)
    return [detections[i] for i in kept]


class FaceDetector(abc.ABC):
    """Finds faces with five landmarks in batches of images.

    Subclasses implement :meth:`_detect_prepared`, which receives 8-bit RGB pictures no larger
    than ``detect_size`` (plus ``DITHER_PERIOD`` when dithered) and returns detections in their
    pixels.
    """

    name: str = ""

    def __init__(self, score_threshold: float, nms_threshold: float, detect_size: int) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.detect_size = int(detect_size)

    def detect(
        self,
        images: Sequence[np.ndarray],
        shifts: Sequence[tuple[int, int]] | None = None,
    ) -> list[list[Detection]]:
        """Faces in each image, in that image's pixel coordinates.

        ``shifts`` (one per image, pixels of the picture the detector sees) move the picture
        right/down (0 to ``DITHER_PERIOD - 1``) before detection; see :func:`dither_shift`.
        """
        scales = [working_scale(im.shape[1], im.shape[0], self.detect_size) for im in images]
        offsets: list[tuple[int, int] | None] = (
            list(shifts) if shifts is not None else [None] * len(images)
        )
        if len(offsets) != len(images):
            raise ValueError(f"{len(offsets)} shifts for {len(images)} images")
        prepared = [
            _pad(resize_by(to_uint8(im), s), shift)
            for im, s, shift in zip(images, scales, offsets, strict=True)
        ]
        found = self._detect_prepared(prepared) if prepared else []
        out = []
        for dets, s, shift in zip(found, scales, offsets, strict=True):
            sx, sy = shift or (0, 0)
            out.append([d.moved(1.0, (-sx, -sy)).moved(s) for d in dets])
        return out

    @abc.abstractmethod
    def _detect_prepared(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect in 8-bit RGB pictures that need no resizing."""
