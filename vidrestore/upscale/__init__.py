"""Upscaled output: the background at ``scale`` times the source size (Lanczos or a
super-resolution model loaded by spandrel), faces pasted at the output resolution."""

from .canvas import SCALES, Upscaler
from .geometry import output_affine, scaled_affine, scaled_info
from .model import LANCZOS, NAMED, BackgroundDescriptor, load_background

__all__ = [
    "LANCZOS",
    "NAMED",
    "SCALES",
    "BackgroundDescriptor",
    "Upscaler",
    "load_background",
    "output_affine",
    "scaled_affine",
    "scaled_info",
]
