"""Paste restored faces back into frames with a soft mask.

The restored 512x512 face and its mask are warped back with the inverse of the (smoothed)
alignment, only inside the face's bounding region of the frame. Pixels where the mask is zero are
never written, so the background stays exactly the decoded source. Black-and-white frames get a
gray face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FACE = 512


def template_mask(size: int = FACE) -> np.ndarray:
    """A feathered ellipse over the face area of the aligned template, float32 in [0, 1].

    It covers brows to chin and cheek to cheek of the 5-point template and fades out well inside
    the 512 square, so the crop's own border never shows.
    """
    s = size / FACE
    m: np.ndarray = np.zeros((size, size), np.float32)
    cv2.ellipse(m, (round(256 * s), round(278 * s)), (round(168 * s), round(208 * s)), 0, 0, 360,
                1.0, -1, lineType=cv2.LINE_AA)
    k = round(61 * s) | 1
    m = cv2.GaussianBlur(m, (k, k), 0)
    m = cv2.GaussianBlur(m, (k, k), 0)
    m[m < 1.0 / 1024] = 0.0
    return m


def is_gray(pixels: np.ndarray, tolerance: float | None = None) -> bool:
    """True when (nearly) every pixel has R == G == B: a black-and-white picture."""
    if tolerance is None:
        tolerance = 2 if pixels.dtype == np.uint8 else 2 * 257
    sample = pixels[::4, ::4].astype(np.int32)
    diff = np.maximum(np.abs(sample[..., 0] - sample[..., 1]),
                      np.abs(sample[..., 1] - sample[..., 2]))
    return float((diff > tolerance).mean()) < 0.005


def to_gray(face: np.ndarray) -> np.ndarray:
    """Replace an RGB float face by its luma (Rec. 601 weights) on all three channels."""
    y = face @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(y[..., None], 3, axis=2)


@dataclass(frozen=True)
class Region:
    """Where a warped face lands in the frame, and the map from that region to the face."""

    x0: int
    y0: int
    x1: int
    y1: int
    to_face: np.ndarray  # 2x3: region pixel -> aligned face pixel


def paste_region(affine: np.ndarray, mask: np.ndarray, frame_w: int, frame_h: int
                 ) -> Region | None:
    """Frame region covered by the non-zero part of ``mask`` under the inverse of ``affine``.

    ``affine`` maps frame pixels to mask pixels.
    """
    ys, xs = np.nonzero(mask[::8, ::8])
    if xs.size == 0:
        return None
    x_lo, x_hi = xs.min() * 8 - 8, xs.max() * 8 + 16
    y_lo, y_hi = ys.min() * 8 - 8, ys.max() * 8 + 16
    corners = np.array([[x_lo, y_lo, 1], [x_hi, y_lo, 1], [x_lo, y_hi, 1], [x_hi, y_hi, 1]],
                       np.float64)
    inv = cv2.invertAffineTransform(affine)
    pts = corners @ inv.T
    x0 = max(int(np.floor(pts[:, 0].min())), 0)
    y0 = max(int(np.floor(pts[:, 1].min())), 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 1, frame_w)
    y1 = min(int(np.ceil(pts[:, 1].max())) + 1, frame_h)
    if x1 <= x0 or y1 <= y0:
        return None
    to_face = affine.astype(np.float64).copy()
    to_face[:, 2] += affine[:, :2] @ np.array([x0, y0], np.float64)
    return Region(x0, y0, x1, y1, to_face)


def shrunk_for_paste(face: np.ndarray | None, mask: np.ndarray, affine: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face, mask and map as pasted: shrinking a face a lot with a bilinear warp aliases, so a
    face at least twice the size it is pasted at is first shrunk by area averaging. Applying
    it again changes nothing (the map it returns shrinks less than twice), so a caller that
    needs both :func:`paste_box` and :func:`paste_face` shrinks once and passes the result."""
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))  # face px per frame px
    affine = affine.astype(np.float64)
    if scale >= 2.0:
        side = mask.shape[0]
        size = side // int(scale)
        if face is not None:
            face = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
        affine = affine * (size / side)
    return face if face is not None else mask, mask, affine


def paste_box(mask: np.ndarray, affine: np.ndarray, frame_w: int, frame_h: int
              ) -> tuple[int, int, int, int] | None:
    """The box ``(x0, y0, x1, y1)`` of a ``frame_w`` x ``frame_h`` frame that :func:`paste_face`
    of a face with this mask and map may change (None: none)."""
    _, mask, affine = shrunk_for_paste(None, mask, affine)
    region = paste_region(affine, mask, frame_w, frame_h)
    return None if region is None else (region.x0, region.y0, region.x1, region.y1)


def paste_face(pixels: np.ndarray, face: np.ndarray, mask: np.ndarray, affine: np.ndarray,
               *, gray: bool = False, origin: tuple[int, int] = (0, 0),
               frame_size: tuple[int, int] | None = None) -> tuple[int, int, int, int] | None:
    """Blend ``face`` (SxSx3 float32 in [0, 1]) into ``pixels`` in place; returns the box
    ``(x0, y0, x1, y1)`` outside which no pixel changed (None: none did).

    Args:
        pixels: HxWx3 RGB frame, uint8 or uint16; only pixels under a non-zero mask change.
        face: the restored aligned face (512x512, or larger where it was upsampled).
        mask: float32 blend weights in aligned space, the face's size.
        affine: 2x3 frame -> aligned face map used to cut the face out.
        gray: paste the face's luma only (black-and-white sources).
        origin, frame_size: ``pixels`` may be a box of the frame, its top-left corner at
            ``origin`` of a frame of ``frame_size`` (w, h); the map and the box returned are
            the frame's, so the same face pastes to the same values either way.
    """
    w, h = frame_size or (pixels.shape[1], pixels.shape[0])
    face, mask, affine = shrunk_for_paste(face, mask, affine)
    region = paste_region(affine, mask, w, h)
    if region is None:
        return None
    rw, rh = region.x1 - region.x0, region.y1 - region.y0
    flags = cv2.WARP_INVERSE_MAP
    m = cv2.warpAffine(mask, region.to_face, (rw, rh), flags=cv2.INTER_LINEAR | flags,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    if not m.any():
        return None
    f = cv2.warpAffine(face, region.to_face, (rw, rh), flags=cv2.INTER_CUBIC | flags,
                       borderMode=cv2.BORDER_REPLICATE)
    if gray:
        f = to_gray(f)
    full = 255.0 if pixels.dtype == np.uint8 else 65535.0
    ox, oy = origin
    roi = pixels[region.y0 - oy : region.y1 - oy, region.x0 - ox : region.x1 - ox]
    if roi.shape[:2] != (rh, rw):
        raise ValueError(f"the face's box {region.x0, region.y0, region.x1, region.y1} is not "
                         f"inside the pixels at {origin}")
    # src + m * (face - src) over the whole region, in place: where m is 0 this is src exactly
    # (integers are exact in float32), so those pixels are rewritten with their own values.
    src = roi.astype(np.float32)
    np.clip(f, 0.0, 1.0, out=f)
    np.multiply(f, full, out=f)
    np.subtract(f, src, out=f)
    np.multiply(f, m[..., None], out=f)
    np.add(f, src, out=f)
    np.rint(f, out=f)
    np.clip(f, 0, full, out=f)
    np.copyto(roi, f, casting="unsafe")
    return region.x0, region.y0, region.x1, region.y1
