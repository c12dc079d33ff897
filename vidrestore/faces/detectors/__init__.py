"""Face detectors behind one small interface (:mod:`.base`), one module per backend
(:mod:`.yunet`, :mod:`.retinaface`), the name-to-backend factory (:mod:`.factory`) and the
small-face scans (:mod:`.scan`)."""

from .base import (
    DITHER_PERIOD,
    MIN_DETECT_PX,
    FaceDetector,
    dither_shift,
    nms,
    resize_by,
    to_uint8,
    working_scale,
)
from .factory import available_detectors, create_detector
from .retinaface import RetinaFaceDetector
from .scan import detect_regions, detect_tiles
from .yunet import YuNetDetector

__all__ = [
    "DITHER_PERIOD",
    "MIN_DETECT_PX",
    "FaceDetector",
    "RetinaFaceDetector",
    "YuNetDetector",
    "available_detectors",
    "create_detector",
    "detect_regions",
    "detect_tiles",
    "dither_shift",
    "nms",
    "resize_by",
    "to_uint8",
    "working_scale",
]
