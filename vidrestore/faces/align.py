"""The 512x512 face template, the frame-to-face similarity transform and the warp.

This is the single home of the template: the restorer, the blender and the smoother all take it
from here.

The transform is the least-squares similarity (rotation, uniform scale, translation) that maps
the five landmarks onto the template; it has a closed form (Umeyama's, which for similarities
is a linear least-squares problem). The published pipeline estimates it with
``cv2.estimateAffinePartial2D(..., method=LMEDS)``, a least-median fit that may declare one of
the five points an outlier and leave it out: when it does, the transform jumps (on the raw
detections of ``vr_face_4.mp4`` it leaves a point out on 34 of 199 frames, moving the crop by up
to 17 pixels). When all points are kept it refines to the same least-squares answer. The
closed form is a smooth function of the landmarks, so smooth landmarks always give a smooth
transform; ``benchmarks/bench_faces.py`` measures both.
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 512

# image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner
TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float32,
)
TEMPLATE_512.setflags(write=False)

# Border fill of the published pipeline (B=135, G=133, R=132), here in RGB order.
BORDER_RGB = (132, 133, 135)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``A`` (2x3, float64) with ``A @ [src; 1] ~= dst``.

    ``src`` and ``dst`` are (N, 2) point sets in the same order. No reflection can occur: the
    linear part is always ``[[a, -b], [b, a]]``.
    """
    s = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if s.shape != d.shape or len(s) < 2:
        raise ValueError(
            f"need two matching point sets of at least 2 points, got {s.shape}, {d.shape}"
        )
    sc, dc = s.mean(axis=0), d.mean(axis=0)
    s0, d0 = s - sc, d - dc
    norm = float((s0**2).sum())
    if norm <= 0.0:
        raise ValueError("the source points coincide; no similarity is defined")
    a = float((s0 * d0).sum()) / norm
    b = float((s0[:, 0] * d0[:, 1] - s0[:, 1] * d0[:, 0]).sum()) / norm
    m = np.array([[a, -b], [b, a]])
    return np.hstack([m, (dc - m @ sc)[:, None]])


def similarity_transform(landmarks: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Affine (2x3, float64) taking frame pixels to the aligned ``size`` x ``size`` face."""
    template = TEMPLATE_512.astype(np.float64) * (size / FACE_SIZE)
    return fit_similarity(landmarks, template)


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine (aligned face back to frame pixels)."""
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def transform_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (N, 2) points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a = np.asarray(affine, dtype=np.float64)
    moved: np.ndarray = p @ a[:, :2].T + a[:, 2]
    return moved


def affine_scale(affine: np.ndarray) -> float:
    """The uniform scale of a similarity (aligned pixels per frame pixel)."""
    a = np.asarray(affine, dtype=np.float64)
    return float(np.sqrt(abs(np.linalg.det(a[:, :2]))))


def warp_face(image: np.ndarray, affine: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """The aligned ``size`` x ``size`` RGB face (bilinear), same dtype as ``image``.

    Pixels outside the frame are filled with the published pipeline's grey (R=132, G=133,
    B=135), scaled to the full 16-bit range for ``uint16`` images.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"warp_face needs an HxWx3 uint8/uint16 image, got {image.shape} {image.dtype}"
        )
    unit = 257 if image.dtype == np.uint16 else 1
    fill = tuple(float(c * unit) for c in BORDER_RGB)
    return cv2.warpAffine(
        image,
        np.asarray(affine, dtype=np.float64),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
