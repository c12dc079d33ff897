"""Pose of a tracked face by image registration against a reference view of the same face.

Detector landmarks carry an error that follows the pose: YuNet, for one, reports only part of a
face's roll, so a smoother that follows the detections inherits that error however long it
averages. The face's pixels do not have it. Each track keeps a small grey reference patch of its
face in template coordinates (the inner face of the 512x512 aligned crop, sampled at ``patch``
pixels per 512 and cropped to the matched ellipse) and, on every detected frame, finds by ECC
(``cv2.findTransformECC``, an affine fit reduced to a similarity) where that patch lies in the
new frame. Carrying the reference's landmarks with that
transform gives landmarks that move rigidly with the face: precise from frame to frame, and
offset from the truth only by a constant (the detection the reference started from), which the
smoother estimates from the detections over the whole track.

When the match weakens (expression, a turning head: correlation below ``refresh_cc``) the
reference is renewed from the current frame at the registered position, so it stays continuous;
when it fails (below ``restart_cc``, or no convergence) it restarts from the detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .align import FACE_SIZE, affine_scale, similarity_transform, transform_points

_SAMPLE = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


@dataclass(frozen=True)
class RegistrationTuning:
    """How the registration samples and matches the face."""

    patch: int = 96
    """Sampling density: the 512 template at this many pixels (the patch itself covers only
    the matched ellipse's bounding box, so the match costs no pixels it does not use)."""
    iterations: int = 5
    """ECC iterations per frame (it starts from the detection's motion, so few are needed)."""
    eps: float = 1e-3
    """ECC convergence threshold."""
    refresh_cc: float = 0.9
    """Correlation below which the reference is renewed from the current frame."""
    restart_cc: float = 0.6
    """Correlation below which the match is not used and the reference restarts."""
    follow_cc: float = 0.8
    """On a frame without detection (:meth:`FaceRegistrar.follow`): correlation below which
    the face is taken as lost (nothing else says it is still there)."""
    min_scale: float = 0.5
    """Frame pixels per patch pixel below which a face is not registered: a face that small
    (eyes about 12 pixels apart) has too few pixels for the match to beat the detector."""
    mask_centre: tuple[float, float] = (256.0, 300.0)
    mask_axes: tuple[float, float] = (150.0, 185.0)
    """Ellipse (template 512 pixels) over the inner face: the pixels that are matched."""


@dataclass(frozen=True)
class Registration:
    """Where registration puts the face on one frame.

    ``landmarks`` are the reference's landmarks carried to this frame; ``cc`` is the match's
    correlation (1 = identical). ``restarted``: the reference was (re)started from this frame's
    detection, so the landmarks are the detection's and carry no information of their own.
    """

    landmarks: np.ndarray
    cc: float
    restarted: bool


class FaceRegistrar:
    """Follows one track's face by registering each frame to a reference view of it."""

    def __init__(self, tuning: RegistrationTuning | None = None) -> None:
        self.tuning = tuning or RegistrationTuning()
        t = self.tuning
        k = t.patch / FACE_SIZE
        (cx, cy), (ax, ay) = t.mask_centre, t.mask_axes
        # the ellipse's bounding box plus a pixel for the match's smoothing and gradients
        x0, y0 = np.floor(k * (cx - ax)) - 1, np.floor(k * (cy - ay)) - 1
        self._size = (int(np.ceil(k * (cx + ax)) + 1 - x0), int(np.ceil(k * (cy + ay)) + 1 - y0))
        self._to_patch = np.array([[k, 0.0, -x0], [0.0, k, -y0], [0.0, 0.0, 1.0]])
        yy, xx = np.mgrid[0 : self._size[1], 0 : self._size[0]].astype(np.float32)
        xx, yy = (xx + x0) / k, (yy + y0) / k  # template 512 px
        self._mask = ((((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2) <= 1).astype(np.uint8)
        self._reference: np.ndarray | None = None
        self._points: np.ndarray | None = None  # reference landmarks, patch px
        self._patch_to_frame: np.ndarray | None = None  # 3x3, current frame
        self._detection_map: np.ndarray | None = None  # 3x3 template -> frame, last detection

    @property
    def following(self) -> bool:
        """A reference is held: :meth:`follow` can register the next frame."""
        return self._reference is not None

    def step(self, pixels: np.ndarray, landmarks: np.ndarray) -> Registration | None:
        """Register frame ``pixels`` (RGB or grey) given this frame's detected ``landmarks``;
        None for a face too small to register."""
        detection_map = _inverse(_square(similarity_transform(landmarks)))
        if not self._large_enough(detection_map):
            return None
        if self._reference is None or self._patch_to_frame is None:
            return self._restart(pixels, landmarks, detection_map)
        # start from the previous match moved as the detections moved (follows fast motion)
        guess = detection_map @ _inverse(self._detection_map) @ self._patch_to_frame
        self._detection_map = detection_map
        matched = self._match(pixels, guess)
        if matched is None:
            return self._restart(pixels, landmarks, detection_map)
        cc, self._patch_to_frame = matched
        if cc < self.tuning.refresh_cc:
            self._reference = self._sample(pixels, self._patch_to_frame)
        assert self._points is not None
        return Registration(_apply(self._patch_to_frame, self._points), cc, False)

    def follow(self, pixels: np.ndarray, expected: np.ndarray) -> Registration | None:
        """Register a frame that was not detected, starting from the ``expected`` landmarks
        (the smoother's prediction). No reference is started from a guess: ``None`` when there
        is no reference, the face is too small, or the match fails (the reference is then
        dropped, so the next detection starts a new one)."""
        if self._reference is None or self._patch_to_frame is None:
            return None
        expected_map = _inverse(_square(similarity_transform(expected)))
        if not self._large_enough(expected_map):
            return None
        guess = expected_map @ _inverse(self._detection_map) @ self._patch_to_frame
        matched = self._match(pixels, guess)
        if matched is None or matched[0] < self.tuning.follow_cc:
            self._reference = None
            return None
        cc, found = matched
        assert self._points is not None
        landmarks = _apply(found, self._points)
        # the next guess moves on from where the face was found, not from the expectation
        self._detection_map = _inverse(_square(similarity_transform(landmarks)))
        self._patch_to_frame = found
        if cc < self.tuning.refresh_cc:
            self._reference = self._sample(pixels, found)
        return Registration(landmarks, cc, False)

    def _large_enough(self, template_to_frame: np.ndarray) -> bool:
        """Whether a face placed by ``template_to_frame`` has pixels enough to register
        (``min_scale``); a face too small drops the reference."""
        scale = affine_scale(template_to_frame[:2]) * FACE_SIZE / self.tuning.patch
        if scale < self.tuning.min_scale:
            self._reference = None
            return False
        return True

    def _match(self, pixels: np.ndarray, guess: np.ndarray) -> tuple[float, np.ndarray] | None:
        """ECC of the reference against the frame seen through ``guess``: the correlation and
        the patch-to-frame map found, or ``None`` below ``restart_cc`` or without convergence."""
        t = self.tuning
        assert self._reference is not None
        patch = self._sample(pixels, guess)
        try:
            cc, warp = cv2.findTransformECC(
                self._reference, patch, np.eye(2, 3, dtype=np.float32), cv2.MOTION_AFFINE,
                (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, t.iterations, t.eps),
                self._mask, 3)
        except cv2.error:  # no convergence, or a patch without texture
            return None
        if not np.isfinite(cc) or cc < t.restart_cc:
            return None
        return float(cc), guess @ _similar(_square(warp.astype(np.float64)))

    def _restart(self, pixels: np.ndarray, landmarks: np.ndarray,
                 detection_map: np.ndarray) -> Registration:
        self._detection_map = detection_map
        self._patch_to_frame = detection_map @ _inverse(self._to_patch)
        self._reference = self._sample(pixels, self._patch_to_frame)
        self._points = _apply(_inverse(self._patch_to_frame), landmarks)
        return Registration(np.asarray(landmarks, np.float32), 1.0, True)

    def _sample(self, pixels: np.ndarray, patch_to_frame: np.ndarray) -> np.ndarray:
        """The grey patch seen through ``patch_to_frame``, float32.

        A face more than twice the patch's size is sampled at twice the patch's resolution and
        then shrunk by area averaging, so the patch is not badly aliased.
        """
        w, h = self._size
        over = 2 if affine_scale(patch_to_frame[:2]) > 2.0 else 1
        m = patch_to_frame @ np.diag([1.0 / over, 1.0 / over, 1.0])
        patch = cv2.warpAffine(pixels, m[:2], (w * over, h * over), flags=_SAMPLE,
                               borderMode=cv2.BORDER_REPLICATE)
        if patch.ndim == 3:
            patch = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)
        if over > 1:
            patch = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA)
        return patch.astype(np.float32)


def _square(affine: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(affine, np.float64), [0.0, 0.0, 1.0]])


def _inverse(m: np.ndarray | None) -> np.ndarray:
    assert m is not None
    return np.linalg.inv(m)


def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return transform_points(m[:2], points).astype(np.float32)


def _similar(m: np.ndarray) -> np.ndarray:
    """The similarity closest to an affine map (rotation and uniform scale; translation kept)."""
    a = (m[0, 0] + m[1, 1]) / 2
    b = (m[1, 0] - m[0, 1]) / 2
    out: np.ndarray = m.copy()
    out[:2, :2] = [[a, -b], [b, a]]
    return out
