"""What changed between consecutive frames: scene cuts, and held (repeated) pictures.

Cuts: each frame is reduced to a 64-pixel-wide thumbnail; its hue-saturation and value
histograms are compared with the previous frame's (Bhattacharyya distance, 0 = same,
1 = disjoint). Motion inside a shot moves pixels but barely changes these histograms; a cut
replaces them.

Held frames: video converted to a higher frame rate by repeating pictures (15 or 24 fps material
at 25 or 30, telecined film, animation on twos, screen recordings) shows the same instant on
several frames, and its motion happens in jumps between them. A face on a repeated picture has
not moved: its landmarks must repeat too (a restored face that shifts on a still picture is
flicker), and a smoother must not round off the jumps as if they were noise. A frame is held
when no 8x8 block of a grey copy about 320 pixels wide differs from the picture the hold
started on by more than ``HELD_LEVEL`` on average, and by less than ``HELD_CONTRAST`` of what
the recent new pictures differed by. In both real clips of the test media the encoder's noise
on a repeat stays under 5 levels where a new picture moves some block by 15 to 190. A slow
pan (0.3 px a frame at 720p) moves the blocks by only 5 to 10 on every frame: it repeats
nothing, and the contrast tells it from a repeat.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from .detectors import to_uint8

THUMB_WIDTH = 64
_HS_BINS = (16, 8)
_V_BINS = 16
HELD_WIDTH = 320
HELD_BLOCK = 8
HELD_LEVEL = 8.0
"""Largest mean absolute difference (8-bit levels) of any block between held pictures."""
HELD_CONTRAST = 0.25
"""A repeat differs by at most this share of the median difference of the recent new
pictures (``HELD_HISTORY`` of them, at least 2 seen)."""
HELD_HISTORY = 9
HELD_LONGEST = 4
"""Most frames in a row taken as repeats of one picture: a scene that is truly still for
longer gets fresh measurements again."""


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


def held_picture(pixels: np.ndarray) -> np.ndarray:
    """The grey copy (about ``HELD_WIDTH`` pixels wide, float32, 8-bit levels) that frames are
    compared on to find held pictures."""
    step = max(1, pixels.shape[1] // HELD_WIDTH)
    small = np.ascontiguousarray(to_uint8(pixels[::step, ::step]))
    grey: np.ndarray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return grey


def held_level(a: np.ndarray, b: np.ndarray) -> float:
    """The largest mean absolute difference over the ``HELD_BLOCK`` blocks of two
    :func:`held_picture` copies."""
    h, w = a.shape[0] // HELD_BLOCK * HELD_BLOCK, a.shape[1] // HELD_BLOCK * HELD_BLOCK
    if not h or not w:
        return float(np.abs(a - b).mean())
    d = cv2.absdiff(a[:h, :w], b[:h, :w])
    blocks = cv2.resize(d, (w // HELD_BLOCK, h // HELD_BLOCK), interpolation=cv2.INTER_AREA)
    return float(blocks.max())


class HeldFrames:
    """Says, frame by frame, whether the picture repeats an earlier one (see the module).

    Each frame is compared with the picture the current hold started on, not with the frame
    before, so a slow drift adds up and ends the hold; at most ``longest`` frames in a row are
    held. The first frames of a video or a scene are not held until two new pictures tell how
    much its pictures differ.
    """

    def __init__(self, longest: int = HELD_LONGEST) -> None:
        self.longest = int(longest)
        self._reference: np.ndarray | None = None
        self._run = 0
        self._levels: deque[float] = deque(maxlen=HELD_HISTORY)  # of the new pictures

    def update(self, pixels: np.ndarray, cut: bool = False) -> bool:
        """Feed the next frame (``cut``: a new scene starts on it); True when it is held."""
        current = held_picture(pixels)
        reference = self._reference
        if cut or reference is None or reference.shape != current.shape:
            self._levels.clear()
            level = float("inf")
        else:
            level = held_level(reference, current)
        if (level <= HELD_LEVEL and len(self._levels) >= 2 and self._run < self.longest
                and level <= HELD_CONTRAST * float(np.median(self._levels))):
            self._run += 1
            return True
        if np.isfinite(level):
            self._levels.append(level)
        self._reference, self._run = current, 0
        return False
