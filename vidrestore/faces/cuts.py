"""Scene-cut detection on small thumbnails, so tracks and smoothing restart with a new shot.

Each frame is reduced to a 64-pixel-wide thumbnail; its hue-saturation and value histograms are
compared with the previous frame's (Bhattacharyya distance, 0 = same, 1 = disjoint). Motion
inside a shot moves pixels but barely changes these histograms; a cut replaces them.
"""

from __future__ import annotations

import cv2
import numpy as np

from .detectors import to_uint8

THUMB_WIDTH = 64
_HS_BINS = (16, 8)
_V_BINS = 16


def thumbnail(pixels: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """A small 8-bit HSV copy of an RGB frame (cheap even for 4K: strided before resizing)."""
    w = pixels.shape[1]
    step = max(1, w // (width * 4))
    small = to_uint8(pixels[::step, ::step])
    sh, sw = small.shape[:2]
    size = (width, max(1, round(sh * width / sw)))
    return cv2.cvtColor(cv2.resize(small, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)


def histograms(hsv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised hue-saturation and value histograms of an HSV thumbnail."""
    hs = cv2.calcHist([hsv], [0, 1], None, list(_HS_BINS), [0, 180, 0, 256])
    v = cv2.calcHist([hsv], [2], None, [_V_BINS], [0, 256])
    return (cv2.normalize(hs, np.empty_like(hs), 1.0, 0.0, cv2.NORM_L1),
            cv2.normalize(v, np.empty_like(v), 1.0, 0.0, cv2.NORM_L1))


def cut_score(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Distance 0..1 between two frames' histograms (the mean of the two Bhattacharyya terms)."""
    hs = cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA)
    v = cv2.compareHist(a[1], b[1], cv2.HISTCMP_BHATTACHARYYA)
    return float(np.clip((hs + v) / 2.0, 0.0, 1.0))


class CutDetector:
    """Says, frame by frame, whether a new scene starts there.

    ``threshold`` is the :func:`cut_score` at or above which a cut is declared; 1 disables cuts.
    The first frame is not a cut.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self.last_score = 0.0

    def update(self, pixels: np.ndarray) -> bool:
        """Feed the next frame; True when it starts a new scene."""
        if self.threshold >= 1.0:
            return False
        current = histograms(thumbnail(pixels))
        previous, self._previous = self._previous, current
        if previous is None:
            return False
        self.last_score = cut_score(previous, current)
        return self.last_score >= self.threshold
