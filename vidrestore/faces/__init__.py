"""Faces in video: detection, tracking with stable IDs, zero-lag landmark smoothing, alignment.

``FaceStream`` composes the stages; each is usable on its own (``create_detector``,
``Tracker``, ``LandmarkSmoother``, ``similarity_transform``/``warp_face``).
"""

from .align import FACE_SIZE, TEMPLATE_512, invert_affine, similarity_transform, warp_face
from .detectors import FaceDetector, available_detectors, create_detector
from .options import FaceOptions
from .records import Detection, FrameFaces, TrackedFace
from .smooth import LandmarkSmoother, SmootherTuning
from .stream import FaceStream
from .track import Tracker

__all__ = [
    "FACE_SIZE",
    "TEMPLATE_512",
    "Detection",
    "FaceDetector",
    "FaceOptions",
    "FaceStream",
    "FrameFaces",
    "LandmarkSmoother",
    "SmootherTuning",
    "TrackedFace",
    "Tracker",
    "available_detectors",
    "create_detector",
    "invert_affine",
    "similarity_transform",
    "warp_face",
]
