"""Lanczos enlargement of whole pictures with FFmpeg's scaler (swscale, through PyAV).

swscale filters planar pictures with SIMD code and keeps the filter it computed for a size, so
a :class:`Lanczos` object that lives as long as the run enlarges a 480p frame to 960p in about
a third of OpenCV's ``INTER_LANCZOS4`` time (7 vs 20 ms here; 30 vs 104 ms for 1080p to 4K).
Its kernel has three lobes where OpenCV's has four; the pictures differ by 0.2/255 on average.
16-bit pictures go through OpenCV: swscale carries them with 15 bits inside (a flat 21845
comes out as 21843 and 21846), and deep sources are kept for their last bits.
"""

from __future__ import annotations

import threading

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter


class Lanczos:
    """Enlarges RGB pictures (HxWx3 uint8 or uint16, same type out); safe across threads."""

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()
        self._lock = threading.Lock()

    def __call__(self, pixels: np.ndarray, width: int, height: int) -> np.ndarray:
        if pixels.shape[1::-1] == (width, height):
            return pixels
        if pixels.dtype != np.uint8:
            return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LANCZOS4)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        with self._lock:  # planar output: swscale's fast path
            out = self._reformatter.reformat(frame, width=width, height=height, format="gbrp",
                                             interpolation=Interpolation.LANCZOS)
        return out.to_ndarray(format="gbrp")
