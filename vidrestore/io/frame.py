"""The frame record that flows through every stage."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture with its exact presentation time.

    ``pixels`` is HxWx3 RGB, ``uint8`` for 8-bit sources and ``uint16`` (full 16-bit scale)
    for deeper ones. ``pts`` counts ``time_base`` units; no stage does fps arithmetic.
    """

    index: int
    pts: int
    time_base: Fraction
    pixels: np.ndarray

    def __post_init__(self) -> None:
        p = self.pixels
        if p.ndim != 3 or p.shape[2] != 3 or p.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"Frame pixels must be HxWx3 uint8 or uint16, got {p.shape} {p.dtype}"
            )

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def with_pixels(self, pixels: np.ndarray) -> Frame:
        """The same frame (index, pts) carrying other pixels."""
        return Frame(self.index, self.pts, self.time_base, pixels)
