"""Zero-lag landmark smoothing per track: a Kalman filter forward, an RTS pass backward.

The five landmarks are split into what moves fast and what does not:

* **pose** - the least-squares similarity from the (centred) template to the points: centroid,
  and the rotation/scale pair ``(a, b)`` times the template radius, so all four values are frame
  pixels. Modelled with constant velocity (white-noise acceleration); a head that pans, turns or
  zooms is followed by this part.
* **shape** - what is left once the pose is undone, in template pixels (expression, head yaw).
  Modelled as a slow random walk, so detector noise in the relative positions of the points is
  averaged over many frames.

When the track is also followed by image registration (:mod:`.register`), each frame has a
second pose measurement: precise from frame to frame, but offset by a constant that belongs to
the registration's reference (the detection it started from). The pose state then carries that
offset too, as a very slow random walk (restarted with the reference), so the detections fix
only where the face is on average over many frames, and the registration how it moves, including
the part of the pose the detector reports wrongly (YuNet under-reports roll). The registration's
noise follows its match quality, so on a face whose look changes (speech, a turning head) the
detections weigh in more.

Measurement noise follows the detector's confidence and the face size (noise proportional to
the face, plus a floor in pixels, so a small or uncertain face is trusted less); process noise
follows the face size, so smoothing behaves alike for faces of any size, and it is raised while
the face moves in a way the model does not expect (recent innovations adding up to more than
noise: a shake, a sudden pan), so such motion is followed instead of averaged away.
``strength`` divides the process noise: higher is steadier.

Offline, each frame's estimate is the fixed-lag Rauch-Tung-Striebel smoothed value given every
frame received so far (up to the stream's look-ahead): it uses what follows as much as what came
before, so real motion is held without lag. Frames without a detection are predicted forward and
then smoothed, which interpolates short gaps. In causal mode the forward (filtered) value is used.

A held frame (its picture repeats the one before, :class:`~.cuts.HeldFrames`) shows the same
instant: the state does not move on there (its detection is one more measurement of that
instant), the next new picture moves it on by all the frames since, and the estimate given
for a held frame is the one given for the frame before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from filterpy.kalman import predict as kf_predict

from .align import TEMPLATE_512
from .register import Registration

_CENTRED = TEMPLATE_512.astype(np.float64) - TEMPLATE_512.astype(np.float64).mean(axis=0)
_RADIUS = float(np.sqrt((_CENTRED**2).sum(axis=1).mean()))  # template px


@dataclass(frozen=True)
class SmootherTuning:
    """Noise model of the landmark smoother (measured on YuNet; see benchmarks/bench_faces.py).

    Standard deviations are relative to the face radius (RMS distance of the landmarks from
    their centroid, in frame pixels) unless stated otherwise.
    """

    noise_rel: float = 0.065
    """Landmark noise of a confident detection, per point and axis (YuNet on a dithered grid:
    0.06-0.09 of the radius on 30-45 pixel radii, measured against known paths)."""
    noise_px: float = 0.5
    """Landmark noise floor in frame pixels (quantisation, resampling)."""
    score_ref: float = 0.9
    """Detector score at which ``noise_rel`` applies; lower scores raise the noise."""
    score_power: float = 2.0
    """Noise grows as ``(score_ref / score) ** score_power``."""
    accel_rel: float = 0.024
    """Pose acceleration per frame^2 (standard deviation) at strength 1. Set on real footage
    against the detector's consensus (``benchmarks/bench_alignment.py``): 0.006 left the
    estimate behind a dancing face by up to 15 frame px (lp_s13, 1.5x the detections' error
    even without the post stage), 0.024 follows it (1.0x) and is 0.67x on a talking head."""
    maneuver_frames: int = 4
    """Innovations summed to tell real motion the model does not expect from noise."""
    maneuver_z: float = 2.0
    """Summed innovation (in standard deviations) above which motion noise is raised."""
    maneuver_rel: float = 0.03
    """Mean innovation (relative to the face radius) that motion noise is raised to absorb."""
    maneuver_max: float = 20.0
    """Largest factor on the acceleration variance while the face moves unexpectedly."""
    shape_rel: float = 0.002
    """Shape drift per frame (standard deviation, relative to the template radius) at strength 1."""
    registration_rel: float = 0.05
    """Registration noise per pose value is ``registration_rel * sqrt(1 - cc)`` of the radius
    (``cc``: the match's correlation) plus ``registration_floor``. On the ground-truth clips of
    ``benchmarks/bench_alignment.py`` the registration's rotation and scale err by 2.7-3.3
    aligned px (RMS) where the detections' err by 5.8-9.8: a fourth of the earlier 0.2 weighs
    them as measured."""
    registration_floor: float = 0.003
    registration_translation: float = 10.0
    """Factor on the registration's noise for the centroid (rotation and scale keep the noise
    above). The registration's centroid follows the face's pixels, the detections' follows the
    five points, which also move with expression and yaw: above 1, where the face is comes
    mostly from the detections and how it turns and zooms from the registration."""
    post_sigma: float = 0.0
    """Offline: a centred Gaussian (frames) over the RTS estimates around each frame, all from
    one pass over the stored frames, beyond the ends carried on with the edge velocity (held
    frames count as frames here). Off by default: the 4.75 it once had made the landmarks as
    steady as a sigma-3 Gaussian of the detections by rounding off true motion too, 3.3x
    further from the detector's consensus than the detections on a dancing face (lp_s13),
    and it lifted the ground-truth path errors by 0.05-0.07 of raw's."""
    post_degree: int = 2
    """Degree of the local polynomial the post stage fits with those Gaussian weights: 0 is the
    plain Gaussian; 2 keeps steady curves (a sway, an accelerating pan) at their full size."""
    guard_px: float = 20.0
    """Offline: the furthest (mean over the points, aligned-face pixels) an estimate may be
    from the detections' own short low-pass (``guard_sigma``) around its frame; beyond, it is
    drawn back onto that bound. Smoothing may steady the landmarks, never carry them off the
    face the detector sees (a fast nod rounded off, a registration gone wrong). 0 = off."""
    guard_sigma: float = 2.0
    """Gaussian (frames) of the detections' low-pass that ``guard_px`` is measured from."""
    offset_walk_rel: float = 0.0002
    """Drift per frame of the registration's offset from the detections (relative to the
    radius). The detections pull the registration back over about (pose noise of one detection /
    this) frames, some 150 by default: longer than the detector's pose-dependent error lasts,
    short enough to undo a reference that slowly went wrong."""
    init_velocity_rel: float = 0.05
    """Prior uncertainty of a new track's velocity, per frame."""


def pose_and_shape(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Split landmarks into pose (4 values, frame px), shape (10 values, template px) and scale.

    ``scale`` is frame pixels per template pixel. :func:`compose` inverts this.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    centre = pts.mean(axis=0)
    d = pts - centre
    norm = float((_CENTRED**2).sum())
    a = float((_CENTRED * d).sum()) / norm
    b = float((_CENTRED[:, 0] * d[:, 1] - _CENTRED[:, 1] * d[:, 0]).sum()) / norm
    scale2 = a * a + b * b
    if scale2 <= 1e-12:
        raise ValueError("degenerate landmarks: all five points coincide")
    inverse = np.array([[a, b], [-b, a]]) / scale2
    shape = d @ inverse.T - _CENTRED
    pose = np.array([centre[0], centre[1], a * _RADIUS, b * _RADIUS])
    return pose, shape.reshape(10), float(np.sqrt(scale2))


def compose(pose: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Landmarks (5, 2) from a pose and a shape (the inverse of :func:`pose_and_shape`)."""
    cx, cy, ar, br = (float(v) for v in np.asarray(pose).reshape(-1)[:4])
    a, b = ar / _RADIUS, br / _RADIUS
    m = np.array([[a, -b], [b, a]])
    pts: np.ndarray = (_CENTRED + np.asarray(shape, dtype=np.float64).reshape(5, 2)) @ m.T + (
        cx, cy)
    return pts.astype(np.float32)


class LandmarkSmoother:
    """Smoothed landmarks of one track, frame by frame.

    Call :meth:`step` once per frame from the track's first detection on, with the detection's
    landmarks and score (``None`` where the face was missed).
    :meth:`smoothed` and :meth:`filtered` give the estimate for any stored frame;
    :meth:`forget_before` drops what is no longer needed, so memory stays bounded by the
    look-ahead. The pose state is the four pose values, their velocities and the offset of the
    registration's pose measurement.
    """

    def __init__(
        self, first_frame: int, strength: float = 1.0, tuning: SmootherTuning | None = None
    ) -> None:
        if strength < 0:
            raise ValueError(f"smoothing strength must be >= 0, got {strength}")
        self.strength = float(strength)
        self.tuning = tuning or SmootherTuning()
        self.first = int(first_frame)
        self._next = int(first_frame)
        self._x: np.ndarray | None = None  # pose state (12, 1): values, velocities, offsets
        self._p: np.ndarray | None = None
        self._s: np.ndarray | None = None  # shape state (10, 1)
        self._sp: np.ndarray | None = None
        # Per stored frame: filtered state, covariance and the noise of the next transition.
        # Each pose value has a model of its own that no measurement mixes with another's, and
        # the two centroid values share theirs, as do the two rotation-scale values (the
        # registration weighs them differently) and all shape values: the covariances are
        # block-diagonal with one small factor per group. Both parts are stored together as a
        # (4, 10) state [pose values; velocities; offsets; shape] (pose rows padded with zeros)
        # with, per frame, two block-diagonal 4x4 covariances (the centroid's block, then the
        # rotation-scale's; shape in both), so two RTS passes on that reduced form smooth
        # every value exactly.
        self._xs: list[np.ndarray] = []
        self._ps: list[np.ndarray] = []
        self._qs: list[np.ndarray] = []
        self._raw: list[np.ndarray | None] = []
        # Frames the state moved on to reach each stored frame: 0 on a held frame (the picture
        # repeats the one before), then the frames held plus one on the next new picture.
        self._dt: list[int] = []
        self._still = 0  # held frames since the last new picture
        # the last estimate given, per kind: a held frame gets it again (a still face)
        self._given: dict[str, tuple[int, np.ndarray]] = {}
        self._innovations: deque[tuple[np.ndarray, float]] = deque(
            maxlen=self.tuning.maneuver_frames
        )

    @property
    def _post_radius(self) -> int:
        """Frames on either side that the post Gaussian averages (three of its sigmas)."""
        t = self.tuning
        if self.strength == 0 or t.post_sigma <= 0:
            return 0
        return int(np.ceil(3 * t.post_sigma * np.sqrt(self.strength)))

    @property
    def _guard_reach(self) -> int:
        """Frames on either side of the guard's low-pass (three of its sigmas; 0: no guard)."""
        t = self.tuning
        return int(np.ceil(3 * t.guard_sigma)) if t.guard_px > 0 else 0

    @property
    def history(self) -> int:
        """Past frames an estimate still reads: the post Gaussian's, and the guard's twice
        (its low-pass of the detections, and the excess around the frame)."""
        return 0 if self.strength == 0 else self._post_radius + 2 * self._guard_reach

    @property
    def last_frame(self) -> int:
        """The newest frame stepped (``first_frame - 1`` before any step)."""
        return self._next - 1

    def step(self, landmarks: np.ndarray | None, score: float | None = None,
             registered: Registration | None = None, held: bool = False) -> None:
        """Add the next frame: a detection's landmarks and score, or ``None`` if missed, and
        the registration's result on this frame, if the track is registered. ``held``: the
        frame repeats the previous picture (:class:`~.cuts.HeldFrames`), so no time passes
        and the face has not moved: a detection there is one more measurement of the same
        instant, and offline both frames get the same landmarks."""
        if self._x is None:
            if landmarks is None:
                raise ValueError("a track's first frame needs a detection")
            self._start(landmarks, score)
            dt = 1
        else:
            dt = 0 if held else self._still + 1
            self._advance(landmarks, score, dt)
        self._still = self._still + 1 if dt == 0 else 0
        if registered is not None and landmarks is not None:
            self._register(registered)
        assert self._x is not None and self._p is not None
        assert self._s is not None and self._sp is not None
        self._raw.append(None if landmarks is None else np.asarray(landmarks, np.float32))
        self._dt.append(dt)
        x = np.zeros((4, 10))
        x[:3, :4] = self._x.reshape(3, 4)
        x[3] = self._s[:, 0]
        p = np.zeros((2, 4, 4))
        for g, rows in enumerate(_GROUP_ROWS):
            p[g, :3, :3] = self._p[np.ix_(rows, rows)]
        p[:, 3, 3] = self._sp[0, 0]
        self._xs.append(x)
        self._ps.append(p)
        # transition noise to the next frame depends on the current size estimate
        self._qs.append(self._transition_q())
        self._next += 1

    def held(self, frame: int) -> bool:
        """Whether stored ``frame`` was stepped as held (its picture repeats the one before)."""
        return self._dt[self._index(frame)] == 0

    def filtered(self, frame: int) -> np.ndarray:
        """Forward (causal) estimate at ``frame``: uses nothing after it. On a held frame,
        the estimate given for the frame before, when that was asked for."""
        return self._give("filtered", frame, self._filtered)

    def smoothed(self, frame: int) -> np.ndarray:
        """Estimate at ``frame`` using every stored frame after it as well (fixed-lag RTS, then
        the centred ``post_sigma`` Gaussian over the estimates around it). On a held frame,
        the estimate given for the frame before, when that was asked for: both frames show
        one instant, so the face must not move between them (the look-ahead grew by a frame
        since, which alone would move it a little)."""
        return self._give("smoothed", frame, self._smoothed)

    def _give(self, kind: str, frame: int, estimate: Callable[[int], np.ndarray]) -> np.ndarray:
        i = self._index(frame)
        given = self._given.get(kind)
        if self.strength > 0 and self._dt[i] == 0 and given is not None \
                and given[0] == frame - 1:
            out = given[1]
        else:
            out = estimate(i)
        self._given[kind] = (frame, out)
        return out

    def _filtered(self, i: int) -> np.ndarray:
        if self.strength == 0 and (raw := self._raw[i]) is not None:
            return raw
        return compose(self._xs[i][0, :4], self._xs[i][3])

    def _smoothed(self, i: int) -> np.ndarray:
        if self.strength == 0 and (raw := self._raw[i]) is not None:
            return raw
        radius = self._post_radius
        lo = max(0, i - self.history)
        if len(self._xs) - lo == 1:
            return self._filtered(i)
        xs, ps = np.stack(self._xs[lo:]), np.stack(self._ps[lo:])
        f, q = _transitions(np.stack(self._qs[lo:]), np.array(self._dt[lo:]))
        x = _rts_means(xs, ps[:, 0], f, q)  # centroid and shape
        x[:, :3, 2:4] = _rts_means(xs, ps[:, 1], f, q)[:, :3, 2:4]  # rotation and scale
        reach = self._guard_reach
        rows = np.arange(max(lo, i - reach), min(len(self._xs), i + reach + 1))
        if radius:
            estimates = self._post(x, rows - lo)
        else:
            estimates = _compose_many(x[rows - lo, 0, :4], x[rows - lo, 3])
        return self._guarded(i, rows, estimates)

    def _post(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Landmarks (len(rows), 5, 2) of the post stage at ``rows`` of the RTS estimates ``x``
        (rows past either end are carried on from the edge row with its velocity)."""
        radius = self._post_radius
        offsets = np.arange(-radius, radius + 1)
        sigma = self.tuning.post_sigma * np.sqrt(max(self.strength, 1e-6))
        weights = _post_kernel(offsets, sigma, self.tuning.post_degree)
        wanted = rows[:, None] + offsets
        k = np.clip(wanted, 0, len(x) - 1)
        beyond = (wanted - k)[..., None]  # frames past the stored ends
        pose = x[k, 0, :4] + beyond * x[k, 1, :4]
        return _compose_many(weights @ pose, weights @ x[k, 3])

    def _guarded(self, i: int, rows: np.ndarray, estimates: np.ndarray) -> np.ndarray:
        """The estimate at stored frame ``i`` drawn back towards the detections by the
        ``guard_sigma`` Gaussian of the excess over ``guard_px`` on the stored frames ``rows``
        around it (``estimates``: theirs), so the correction fades in and out as smoothly as
        the low-pass it is measured from. The detections' low-pass is centred (a one-sided
        one, on the newest frames, lags behind a moving face); frames without a detection
        near them add no excess."""
        t = self.tuning
        here: np.ndarray = estimates[int(np.searchsorted(rows, i))]
        if t.guard_px <= 0:
            return here.astype(np.float32)
        reach = self._guard_reach
        raw = np.full((len(self._raw), 5, 2), np.nan)
        for k in range(max(0, int(rows[0]) - reach), min(len(raw), int(rows[-1]) + reach + 1)):
            if (r := self._raw[k]) is not None:
                raw[k] = r
        offsets = np.arange(-reach, reach + 1)
        near = rows[:, None] + offsets
        symmetric = np.minimum(rows, len(raw) - 1 - rows)[:, None]
        inside = np.abs(offsets)[None, :] <= np.minimum(symmetric, reach)
        picked = raw[np.clip(near, 0, len(raw) - 1)]
        w = np.exp(-0.5 * (offsets / t.guard_sigma) ** 2)[None, :] * (
            inside & np.isfinite(picked).all(axis=(2, 3)))
        total = w.sum(axis=1)
        measured = total > 0
        ref = np.einsum("jk,jkpc->jpc", w / np.where(measured, total, 1.0)[:, None],
                        np.nan_to_num(picked))
        off = estimates - ref
        distance = np.linalg.norm(off, axis=2).mean(axis=1) / _scales(ref, measured)
        share = np.where(measured & (distance > t.guard_px),
                         1.0 - t.guard_px / np.maximum(distance, 1e-9), 0.0)
        taper = np.exp(-0.5 * ((rows - i) / t.guard_sigma) ** 2)
        correction = np.einsum("j,jpc->pc", taper * share, off) / taper.sum()
        corrected: np.ndarray = here - correction
        return corrected.astype(np.float32)

    def predicted(self, frames_ahead: int = 1) -> np.ndarray:
        """Landmarks expected ``frames_ahead`` after the newest frame (motion model only)."""
        x = self._xs[-1]
        return compose(x[0, :4] + frames_ahead * x[1, :4], x[3])

    def forget_before(self, frame: int) -> None:
        """Drop stored frames older than ``frame`` (the newest one is always kept), except the
        few the post Gaussian still reaches back to."""
        n = min(max(0, frame - self.history - self.first), len(self._xs) - 1)
        if n:
            for store in (self._xs, self._ps, self._qs, self._raw, self._dt):
                del store[:n]
            self.first += n

    # -- model ---------------------------------------------------------------------------------

    def _noise(self, scale: float, score: float | None) -> float:
        """Per-point, per-axis landmark noise (frame px) for a face of ``scale``."""
        t = self.tuning
        sigma = t.noise_rel * scale * _RADIUS + t.noise_px
        if score is not None:
            sigma *= (t.score_ref / max(score, 0.05)) ** t.score_power
        return sigma

    def _transition_q(self) -> np.ndarray:
        """Reduced (4x4, block-diagonal) process noise for the next transition.

        Pose: white-noise acceleration following the face size, raised while the recent
        innovations add up to more than noise would (``maneuver_z`` standard deviations of their
        sum): the face moves in a way constant velocity does not expect (a shake, a sudden pan),
        and the smoother must follow it rather than average it away. Shape: a slow random walk.
        """
        assert self._x is not None
        t = self.tuning
        radius = float(np.hypot(self._x[2, 0], self._x[3, 0]))
        accel = t.accel_rel * radius / max(self.strength, 1e-6)
        boost = 1.0
        k = len(self._innovations)
        if k == self._innovations.maxlen:
            total = sum(y for y, _ in self._innovations)
            spread = np.sqrt(sum(v for _, v in self._innovations))
            size = float(np.sqrt(np.mean(total**2)))
            if size / spread > t.maneuver_z:  # more than noise: the model falls behind
                boost = float(np.clip((size / k / (t.maneuver_rel * radius)) ** 2, 1.0,
                                      t.maneuver_max))
        q = np.zeros((4, 4))
        q[:2, :2] = _WHITE_ACCEL * (boost * accel**2)
        q[2, 2] = (t.offset_walk_rel * radius) ** 2
        q[3, 3] = (t.shape_rel * _RADIUS / max(self.strength, 1e-6)) ** 2
        return q

    def _start(self, landmarks: np.ndarray, score: float | None) -> None:
        pose, shape, scale = pose_and_shape(landmarks)
        sigma = self._noise(scale, score)
        velocity = self.tuning.init_velocity_rel * scale * _RADIUS
        self._x = np.concatenate([pose, np.zeros(8)])[:, None]
        self._p = np.kron(np.diag([sigma**2 / 5, velocity**2, 0.0]), _I4)
        self._s = shape[:, None].copy()
        self._sp = _I10 * (sigma / scale) ** 2

    def _advance(self, landmarks: np.ndarray | None, score: float | None, dt: int = 1) -> None:
        """Move the state on by ``dt`` frames (0: a held frame) and take the detection."""
        assert self._x is not None and self._s is not None
        f4, q = _moved(self._qs[-1], dt)
        f = np.kron(f4[:3, :3], _I4)
        self._x, self._p = kf_predict(self._x, self._p, f, np.kron(q[:3, :3], _I4))
        self._s, self._sp = kf_predict(self._s, self._sp, _I10, q[3, 3] * _I10)
        if landmarks is None:
            return
        pose, shape, scale = pose_and_shape(landmarks)
        sigma = self._noise(scale, score)
        # centroid and (a, b) * radius of a least-squares fit carry 1/5 of a point's variance
        r = sigma**2 / 5
        # innovation and its variance (the same for all four values), for maneuver detection
        self._innovations.append((pose - self._x[:4, 0], float(self._p[0, 0]) + r))
        self._x, self._p = _kf_update(self._x, self._p, pose[:, None], _I4 * r, _DETECTED_H)
        self._s, self._sp = _kf_update(
            self._s, self._sp, shape[:, None], _I10 * (sigma / scale) ** 2, _I10
        )

    def _register(self, reg: Registration) -> None:
        """Fuse the registration's pose: it measures the pose plus the reference's offset."""
        assert self._x is not None and self._p is not None
        t = self.tuning
        pose, _, scale = pose_and_shape(reg.landmarks)
        rel = t.registration_rel * np.sqrt(max(1.0 - reg.cc, 0.0)) + t.registration_floor
        r = float((rel * scale * _RADIUS) ** 2)
        noise = r * np.diag([t.registration_translation**2] * 2 + [1.0, 1.0])
        if reg.restarted:
            # a new reference: its offset is unknown, and this frame tells nothing else
            self._x[8:] = 0.0
            self._p[8:, :] = 0.0
            self._p[:, 8:] = 0.0
            self._p[8:, 8:] = _I4 * (scale * _RADIUS) ** 2
        self._x, self._p = _kf_update(self._x, self._p, pose[:, None], noise, _REGISTERED_H)

    def _index(self, frame: int) -> int:
        i = frame - self.first
        if not 0 <= i < len(self._xs):
            raise IndexError(f"frame {frame} is not stored (have {self.first}..{self.last_frame})")
        return i


def _moved(q: np.ndarray, dt: int) -> tuple[np.ndarray, np.ndarray]:
    """The reduced transition (4x4) over ``dt`` frames and its noise, from the one-frame noise
    ``q``: white-noise acceleration over ``dt`` for the pose, random walks for the offset and
    the shape; a held frame (0) stands still, with a trace of noise (none at all would leave
    the covariance singular where a part of the state is still exact, the registration's
    offset before its first match)."""
    f = _F4.copy()
    f[0, 1] = dt
    k = float(dt) if dt else _HELD_NOISE
    grow = np.ones((4, 4))
    grow[:2, :2] = [[k**4, k**3], [k**3, k**2]]
    grow[2, 2] = grow[3, 3] = k
    return f, q * grow


def _transitions(qs: np.ndarray, dts: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The reduced transitions (J-1, 4, 4) between stored states and their noise, from each
    one's one-frame noise ``qs`` (J, 4, 4) and the frames ``dts`` (J,) spanned into each
    state (0: a held frame; default 1 each), as :meth:`LandmarkSmoother._advance` made them."""
    spans = np.ones(len(qs), int) if dts is None else np.asarray(dts, int)
    if (spans[1:] == 1).all():
        return np.broadcast_to(_F4, (len(qs) - 1, 4, 4)), qs[:-1]
    moved = [_moved(qk, int(dt)) for qk, dt in zip(qs[:-1], spans[1:], strict=True)]
    return np.stack([m[0] for m in moved]), np.stack([m[1] for m in moved])


def _rts_means(xs: np.ndarray, ps: np.ndarray, f: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rauch-Tung-Striebel smoothed means of the stored reduced states ``xs`` (J, 4, 10) given
    their filtered covariances ``ps`` and the transitions ``f`` between them and their noise
    ``q`` (:func:`_transitions`): the same means as filterpy's ``rts_smoother``, which also
    works out the smoothed covariances (not used here) and inverts each gain on its own, at
    about five times the cost (40 frames); it runs for every face on every frame."""
    predicted = f @ ps[:-1] @ f.transpose(0, 2, 1) + q  # as the forward pass had them
    gains = ps[:-1] @ f.transpose(0, 2, 1) @ np.linalg.inv(predicted)
    # x_s[k] = x[k] + C[k] (x_s[k + 1] - F x[k]) = base[k] + C[k] x_s[k + 1]
    base = xs[:-1] - gains @ (f @ xs[:-1])
    out = xs.copy()
    for k in range(len(xs) - 2, -1, -1):
        out[k] = base[k] + gains[k] @ out[k + 1]
    return out


def _kf_update(x: np.ndarray, p: np.ndarray, z: np.ndarray, r: np.ndarray,
              h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kalman update, as filterpy's ``update`` computes it (Joseph form), for a vector
    measurement ``z`` with noise ``r``.

    filterpy's own wraps the inversion in a bare ``except:`` that falls back to an elementwise
    ``1 / S``: an interruption landing there (Ctrl-C, or SIGTERM raised in the main thread) is
    swallowed and the state turns to NaN, so the run fails on NaN boxes instead of stopping.
    """
    ph = p @ h.T
    k = np.linalg.solve(h @ ph + r, ph.T).T  # P H' S^-1 (S symmetric)
    i_kh = np.eye(len(x)) - k @ h
    return x + k @ (z - h @ x), i_kh @ p @ i_kh.T + k @ r @ k.T


def _compose_many(pose: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """:func:`compose` of (J, 4) poses and (J, 10) shapes: (J, 5, 2) float64 landmarks."""
    a, b = pose[:, 2] / _RADIUS, pose[:, 3] / _RADIUS
    m = np.stack([np.stack([a, -b], axis=1), np.stack([b, a], axis=1)], axis=1)  # (J, 2, 2)
    pts = _CENTRED[None] + shape.reshape(-1, 5, 2)
    out: np.ndarray = np.einsum("jpc,jrc->jpr", pts, m) + pose[:, None, :2]
    return out


def _scales(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Frame px per template px of (J, 5, 2) landmarks (the ``scale`` of
    :func:`pose_and_shape`); 1 where not ``valid``."""
    d = points - points.mean(axis=1, keepdims=True)
    norm = float((_CENTRED**2).sum())
    a = np.einsum("pc,jpc->j", _CENTRED, d) / norm
    b = (np.einsum("p,jp->j", _CENTRED[:, 0], d[..., 1])
         - np.einsum("p,jp->j", _CENTRED[:, 1], d[..., 0])) / norm
    return np.where(valid, np.maximum(np.hypot(a, b), 1e-9), 1.0)


def _post_kernel(offsets: np.ndarray, sigma: float, degree: int) -> np.ndarray:
    """Weights (summing to 1) of the value at offset 0 of a local polynomial (degree 0 or 2;
    symmetric, so 1 and 3 equal them) fitted with Gaussian weights of ``sigma`` frames."""
    w = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights: np.ndarray
    if degree < 2:
        weights = w / w.sum()
    else:
        s0, s2, s4 = (float((w * offsets.astype(np.float64) ** m).sum()) for m in (0, 2, 4))
        weights = w * (s4 - s2 * offsets**2) / (s0 * s4 - s2 * s2)
    return weights


_I4 = np.eye(4)
_I10 = np.eye(10)
_HELD_NOISE = 1e-3
"""Frames of process noise a held frame takes (see :func:`_moved`)."""
_F2 = np.array([[1.0, 1.0], [0.0, 1.0]])  # one value and its velocity
_F3 = np.eye(3)  # one pose value: value, velocity, offset of the registration
_F3[:2, :2] = _F2
_F4 = np.eye(4)  # the stored reduced form: the pose block and shape
_F4[:3, :3] = _F3
# a pose value's value, velocity and offset in the full state: of the centroid's x (the model of
# both centroid values), of the rotation-scale pair's first (the model of both)
_GROUP_ROWS = ((0, 4, 8), (2, 6, 10))
# discrete white-noise acceleration over one frame (filterpy's Q_discrete_white_noise(2, 1, 1))
_WHITE_ACCEL = np.array([[0.25, 0.5], [0.5, 1.0]])
_POSE_F = np.kron(_F3, _I4)
_DETECTED_H = np.hstack([_I4, np.zeros((4, 8))])  # the detector sees the pose
_REGISTERED_H = np.hstack([_I4, np.zeros((4, 4)), _I4])  # registration: pose + its offset
