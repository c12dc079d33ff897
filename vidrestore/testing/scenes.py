"""Clips with known face paths, for tests and benchmarks of detection, tracking and smoothing.

Real face crops (``Sprite``) are pasted onto a procedural background along smooth sub-pixel
paths (``Motion``), so the true landmarks and boxes of every face on every frame are known
exactly (up to the detector's own constant offset on the still crop). Scenes can follow one
another to make cuts; actors can enter, leave and cross.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from ..faces.align import transform_points
from ..faces.detectors import FaceDetector
from ..faces.records import Detection
from ..io.frame import Frame


@dataclass(frozen=True)
class Sprite:
    """A face crop with a soft alpha mask and its landmarks/box in crop pixels."""

    pixels: np.ndarray
    alpha: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return self.landmarks.astype(np.float64).mean(axis=0)


def sprite_from_detection(image: np.ndarray, det: Detection, margin: float = 0.5) -> Sprite:
    """Cut the face of ``det`` out of ``image`` (RGB) with ``margin`` box widths around it."""
    x1, y1, x2, y2 = (float(v) for v in det.box)
    mw, mh = margin * (x2 - x1), margin * (y2 - y1)
    h, w = image.shape[:2]
    left, top = max(0, int(x1 - mw)), max(0, int(y1 - mh))
    right, bottom = min(w, math.ceil(x2 + mw)), min(h, math.ceil(y2 + mh))
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    ch, cw = crop.shape[:2]
    # soft ellipse over the head: opaque on the face box, fading out in the margin
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    cx, cy = (x1 + x2) / 2 - left, (y1 + y2) / 2 - top
    rx, ry = 0.5 * (x2 - x1) * (1 + margin * 0.8), 0.5 * (y2 - y1) * (1 + margin * 0.8)
    r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    alpha = np.clip((1.15 - r) / 0.3, 0.0, 1.0).astype(np.float32)
    offset = np.array([left, top], dtype=np.float32)
    return Sprite(crop, alpha, det.landmarks - offset, det.box - np.tile(offset, 2))


def sprites_from_photo(
    image: np.ndarray, detector: FaceDetector, margin: float = 0.5
) -> list[Sprite]:
    """Every face ``detector`` finds in an RGB photo, as sprites, left to right."""
    dets = sorted(detector.detect([image])[0], key=lambda d: float(d.box[0]))
    return [sprite_from_detection(image, d, margin) for d in dets]


@dataclass(frozen=True)
class Motion:
    """A smooth path: drift plus a sinusoid for the centre, and slow scale/rotation swings.

    The sprite's landmark centroid goes to ``centre(t)``; it is scaled by ``scale(t)`` (relative
    to the crop) and turned by ``angle(t)`` degrees.
    """

    start: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    amplitude: tuple[float, float] = (0.0, 0.0)
    period: float = 60.0
    phase: float = 0.0
    scale: float = 1.0
    scale_swing: float = 0.0
    angle_swing: float = 0.0

    def centre(self, t: float) -> np.ndarray:
        w = 2 * math.pi * t / self.period + self.phase
        return np.array(
            [
                self.start[0] + self.velocity[0] * t + self.amplitude[0] * math.sin(w),
                self.start[1] + self.velocity[1] * t + self.amplitude[1] * math.sin(2 * w + 1),
            ]
        )

    def zoom(self, t: float) -> float:
        return self.scale * (1 + self.scale_swing * math.sin(2 * math.pi * t / (1.7 * self.period)))

    def angle(self, t: float) -> float:
        return self.angle_swing * math.sin(2 * math.pi * t / (1.3 * self.period) + 0.5)

    def affine(self, t: float, anchor: np.ndarray) -> np.ndarray:
        """2x3 map from sprite to frame pixels at time ``t`` (``anchor`` goes to the centre)."""
        s, a = self.zoom(t), math.radians(self.angle(t))
        m = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        c = self.centre(t)
        return np.hstack([m, (c - m @ anchor)[:, None]])


@dataclass(frozen=True)
class Actor:
    """A sprite on a path, visible on frames ``first`` <= t < ``last`` of its scene."""

    sprite: Sprite
    motion: Motion
    first: int = 0
    last: int | None = None


@dataclass(frozen=True)
class Scene:
    """Frames of one shot: a background panning on its own path, and actors."""

    frames: int
    actors: Sequence[Actor] = ()
    seed: int = 0
    pan: Motion = field(default_factory=lambda: Motion((0.0, 0.0)))


@dataclass(frozen=True)
class TruthFace:
    """Where a face truly is on a frame; ``actor`` is unique over the whole clip.

    ``visible`` is False when faces pasted over it hide most of its landmarks.
    """

    actor: int
    landmarks: np.ndarray
    box: np.ndarray
    visible: bool = True


def background(width: int, height: int, seed: int) -> np.ndarray:
    """A face-free textured RGB picture (blurred coloured noise at a few scales)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), np.float32)
    for cell, weight in ((64, 0.6), (16, 0.3), (4, 0.1)):
        small = rng.random((height // cell + 2, width // cell + 2, 3), dtype=np.float32)
        out += weight * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(0.4, 1.0, size=3).astype(np.float32)
    return np.clip(out * tint * 255, 0, 255).astype(np.uint8)


def render(
    scenes: Sequence[Scene],
    width: int,
    height: int,
    *,
    noise: float = 2.0,
    seed: int = 0,
    time_base: Fraction = Fraction(1, 25),
) -> Iterator[tuple[Frame, list[TruthFace]]]:
    """Frames of the clip with the true faces on each (only faces whose centre is inside)."""
    rng = np.random.default_rng(seed)
    index, actor_base = 0, 0
    for scene in scenes:
        margin = 64
        bg = background(width + 2 * margin, height + 2 * margin, scene.seed)
        for t in range(scene.frames):
            shift = scene.pan.centre(t)
            bg_affine = np.array([[1.0, 0, shift[0] - margin], [0, 1.0, shift[1] - margin]])
            canvas: np.ndarray = cv2.warpAffine(
                bg, bg_affine, (width, height), flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            ).astype(np.float32)
            shown = []
            for k, actor in enumerate(scene.actors):
                last = scene.frames if actor.last is None else actor.last
                if actor.first <= t < last:
                    affine = actor.motion.affine(t, actor.sprite.centre)
                    _paste(canvas, actor.sprite, affine)
                    shown.append((k, actor.sprite, affine))
            truths = []
            for i, (k, sp, affine) in enumerate(shown):
                pts = transform_points(affine, sp.landmarks).astype(np.float32)
                corners = transform_points(affine, _corners(sp.box))
                box = np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
                centre = pts.mean(axis=0)
                if 0 <= centre[0] < width and 0 <= centre[1] < height:
                    hidden = sum(_covers(other, a, pts) for _, other, a in shown[i + 1 :])
                    visible = bool(np.count_nonzero(hidden > 0.5) < 3)
                    truths.append(TruthFace(actor_base + k, pts, box, visible))
            if noise > 0:
                canvas += rng.normal(0.0, noise, canvas.shape).astype(np.float32)
            pixels = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
            yield Frame(index, index, time_base, pixels), truths
            index += 1
        actor_base += len(scene.actors)


def _corners(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])


def _covers(sprite: Sprite, affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Opacity of ``sprite`` (pasted with ``affine``) at frame ``points``."""
    inside = transform_points(cv2.invertAffineTransform(affine), points)
    h, w = sprite.alpha.shape
    out = np.zeros(len(points))
    for n, (x, y) in enumerate(np.rint(inside).astype(int)):
        if 0 <= x < w and 0 <= y < h:
            out[n] = sprite.alpha[y, x]
    return out


def _paste(canvas: np.ndarray, sprite: Sprite, affine: np.ndarray) -> None:
    """Alpha-blend the warped sprite into ``canvas`` (float32 RGB), touching only its footprint."""
    h, w = canvas.shape[:2]
    sh, sw = sprite.pixels.shape[:2]
    corners = transform_points(affine, _corners(np.array([0, 0, sw, sh])))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    local = affine.copy()
    local[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    rgb = cv2.warpAffine(sprite.pixels, local, size, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT).astype(np.float32)
    alpha = cv2.warpAffine(sprite.alpha, local, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)[:, :, None]
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - alpha
    region += alpha * rgb
