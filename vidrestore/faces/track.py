"""Frame-to-frame association of detections into tracks with stable integer IDs.

Each frame, every live track predicts where its face will be (the landmark smoother's motion
model); detections are matched to predictions by optimal assignment
(``scipy.optimize.linear_sum_assignment``) on a cost that adds box overlap, landmark distance
(relative to the face size) and appearance (correlation of a tiny aligned grey face, which keeps
crossing faces apart). Unlikely pairs are gated out.

A track survives up to ``max_gap`` missed frames, so a face the detector loses for a moment
keeps its ID and the gap is bridged. A new track is reported once it has ``min_hits``
consecutive detections (in causal mode also at once when its first detection scores at least
``confirm_score``, since no look-ahead can give its first frame back later); if it looks like a
track lost earlier in the same shot (hidden for longer than ``max_gap``, e.g. behind another
face) and appears where that one was heading, it
takes over the lost track's ID, without bridging the gap. At a scene cut every track ends unless
a detection clearly continues it (same place, same size, same look).

Frames are counted by a sequence number ``n`` (0, 1, 2, ... in push order); the stream maps it to
the frame's own index.

Restoration weight: the restorer is trained on frontal faces aligned by five points. A face
turned into profile, or a detection whose points failed (eyes collapsed together, a box far
taller than the eye distance allows, the nose beside the eyes), would be restored as a frontal
face that is not there. Each detection is judged by its geometry (:func:`frontality`); a track's
weight (``TrackedFace.weight``) follows it, fading over ``fade_frames`` so a face never pops in
or out. A track also has to earn restoration: one detection scoring ``earn_score`` or more and a
plausible geometry on at least ``plausible_share`` of its detections; until then its weight is 0
and :attr:`TrackQuality.reason` says why (a false face: a pattern the detector half-believes).
These classes live here, with the tracks that hold them, so a snapshot of the tracker has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .align import similarity_transform, warp_face
from .options import FaceOptions
from .records import Detection, TrackedFace, box_iou
from .register import FaceRegistrar
from .smooth import LandmarkSmoother, SmootherTuning, pose_and_shape

APPEARANCE_SIZE = 24
"""Side (pixels) of the aligned grey face compared between frames."""

_UNMATCHABLE = 1e6


@dataclass(frozen=True)
class Gates:
    """Limits beyond which a detection cannot continue a track (within a shot / across a cut)."""

    min_iou: float = 0.05
    max_landmark: float = 0.6
    max_appearance: float = 1.0
    cut_min_iou: float = 0.5
    cut_max_landmark: float = 0.15
    cut_max_appearance: float = 0.4
    appearance_weight: float = 0.5
    reid_frames: int = 50
    """How long a lost track's ID can be taken over by a new track that continues it."""
    reid_max_appearance: float = 0.6
    reid_max_distance: float = 2.0
    """Distance (face widths) from where the lost face was heading."""


# the inner face of the aligned 512 crop (brows to chin), where the appearance is read
_INNER = (150.0, 170.0, 212.0)


def appearance(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A tiny aligned grey inner face as a zero-mean unit vector (dot product = NCC)."""
    x0, y0, side = _INNER
    affine = similarity_transform(landmarks)
    affine[:, 2] -= (x0, y0)
    affine *= APPEARANCE_SIZE / side
    face = warp_face(pixels, affine, APPEARANCE_SIZE).astype(np.float32)
    grey = face @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    v: np.ndarray = grey.reshape(-1) - grey.mean()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-6 else v


@dataclass(frozen=True)
class QualityTuning:
    """Limits of a plausible frontal face (ratios to the eye distance) and of an earned track."""

    yaw: tuple[float, float] = (0.3, 0.5)
    """Nose offset along the eye line from the eyes' midpoint: full weight up to the first,
    none beyond the second (0.5: the nose is outside the eyes, a strong yaw)."""
    mouth: tuple[float, float] = (1.8, 2.6)
    """Eye-to-mouth distance (frontal: about 1.0; eyes collapsed together: large)."""
    height: tuple[float, float] = (4.0, 5.5)
    """Box height (frontal: about 2.5-3)."""
    earn_score: float = 0.8
    plausible_share: float = 0.5
    fade_frames: int = 5


def _ramp(value: float, limits: tuple[float, float]) -> float:
    lo, hi = limits
    return float(np.clip((hi - value) / (hi - lo), 0.0, 1.0))


def frontality(det: Detection, tuning: QualityTuning | None = None) -> float:
    """How plausible ``det`` is as a frontal face the restorer can align (0..1)."""
    t = tuning or QualityTuning()
    le, re, nose, lm, rm = np.asarray(det.landmarks, np.float64)
    eyes = float(np.linalg.norm(re - le))
    if eyes < 1e-3:
        return 0.0
    axis = (re - le) / eyes
    mid = (le + re) / 2
    yaw = abs(float((nose - mid) @ axis)) / eyes
    mouth = float(np.linalg.norm((lm + rm) / 2 - mid)) / eyes
    height = float(det.box[3] - det.box[1]) / eyes
    return min(_ramp(yaw, t.yaw), _ramp(mouth, t.mouth), _ramp(height, t.height))


@dataclass
class TrackQuality:
    """One track's restoration weight, frame by frame.

    :meth:`observe` takes each frame's detection (``None`` where missed) in push order;
    :meth:`weight` gives each frame's weight in emission order (the same order, later).
    """

    tuning: QualityTuning = field(default_factory=QualityTuning)
    best_score: float = 0.0
    detections: int = 0
    plausible: int = 0
    _targets: dict[int, float] = field(default_factory=dict)
    _last_target: float = 0.0
    _shown: float | None = None

    @property
    def earned(self) -> bool:
        t = self.tuning
        return (self.best_score >= t.earn_score
                and self.plausible >= t.plausible_share * max(self.detections, 1))

    @property
    def reason(self) -> str | None:
        """Why the track is not restored (None: it is)."""
        t = self.tuning
        if self.best_score < t.earn_score:
            return f"no detection scored {t.earn_score:.2f} or more (best {self.best_score:.2f})"
        if not self.earned:
            return (f"implausible landmarks (profile or failed points) on "
                    f"{self.detections - self.plausible} of {self.detections} detections")
        return None

    def observe(self, n: int, det: Detection | None) -> None:
        if det is not None:
            front = frontality(det, self.tuning)
            self.detections += 1
            self.plausible += front >= 0.5
            self.best_score = max(self.best_score, det.score)
            self._last_target = front
        self._targets[n] = self._last_target

    def weight(self, n: int) -> float:
        """Frame ``n``'s weight: its target (frontality, 0 while not earned) reached by steps
        of ``1 / fade_frames``; the first frame shown takes its target at once."""
        target = self._targets.pop(n, self._last_target) if self.earned else 0.0
        for k in [k for k in self._targets if k < n]:
            del self._targets[k]
        if self._shown is None:
            self._shown = target
        else:
            step = 1.0 / max(self.tuning.fade_frames, 1)
            self._shown += float(np.clip(target - self._shown, -step, step))
        return round(self._shown, 4)


@dataclass
class Track:
    """One face followed over frames.

    ``detections`` holds the detector's results by sequence number (older ones are dropped once
    their frames are emitted); ``box`` is the latest box estimate (a prediction while missed).
    """

    key: int
    first: int
    smoother: LandmarkSmoother
    box: np.ndarray
    look: np.ndarray
    detections: dict[int, Detection] = field(default_factory=dict)
    registrar: FaceRegistrar | None = None
    registered_at_detection: np.ndarray | None = None
    """The registration's landmarks on the last detected frame (what ``Tracker.coast``
    measures the face's motion from)."""
    quality: TrackQuality = field(default_factory=TrackQuality)
    track_id: int | None = None
    last_detected: int = 0
    last_followed: int = 0
    """The last frame the face was seen on: detected, or followed by registration alone."""
    hits: int = 0
    misses: int = 0
    ended: bool = False

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None

    def predicted_box(self) -> np.ndarray:
        """The box expected on the next frame: the current box moved and scaled like the pose."""
        return _follow(self.box, self.smoother.predicted(0), self.smoother.predicted(1))

    def box_at(self, n: int, landmarks: np.ndarray) -> np.ndarray:
        """Detected box at ``n``; else interpolated between the nearest detections; else (no
        detection after ``n`` yet) the last detected box moved and scaled like ``landmarks``."""
        if n in self.detections:
            return self.detections[n].box
        before = max((k for k in self.detections if k < n), default=None)
        after = min((k for k in self.detections if k > n), default=None)
        if before is None:
            return self.box
        last = self.detections[before]
        if after is not None:
            w = (n - before) / (after - before)
            return (1 - w) * last.box + w * self.detections[after].box
        return _follow(last.box, last.landmarks, landmarks)


def _carry(points: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``points`` moved by the similarity that takes landmarks ``before`` to ``after`` (both
    the same reference points carried rigidly, so that similarity is exact)."""
    p0, _, _ = pose_and_shape(before)
    p1, _, _ = pose_and_shape(after)
    turn = complex(p1[2], p1[3]) / complex(p0[2], p0[3])  # rotation and scale
    z = (np.asarray(points, np.float64) - p0[:2]) @ np.array([1.0, 1j]) * turn
    out: np.ndarray = (np.stack([z.real, z.imag], axis=1) + p1[:2]).astype(np.float32)
    return out


def _follow(box: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``box`` moved and scaled as the face went from landmarks ``before`` to ``after``."""
    p0, _, s0 = pose_and_shape(before)
    p1, _, s1 = pose_and_shape(after)
    centre = (box[:2] + box[2:]) / 2 + (p1[:2] - p0[:2])
    half = (box[2:] - box[:2]) / 2 * (s1 / s0)
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


class Tracker:
    """Associates each frame's detections with live tracks; holds every track's smoother."""

    def __init__(
        self,
        options: FaceOptions,
        tuning: SmootherTuning | None = None,
        gates: Gates | None = None,
    ) -> None:
        self.options = options
        self.tuning = tuning
        self.gates = gates or Gates()
        self.tracks: list[Track] = []
        self._lost: list[Track] = []
        self._next_key = 0
        self._next_id = 1

    @property
    def live(self) -> list[Track]:
        return [t for t in self.tracks if not t.ended]

    def predicted_boxes(self) -> list[np.ndarray]:
        """Where each live track expects its face on the next frame."""
        return [t.predicted_box() for t in self.live]

    def update(
        self, n: int, detections: Sequence[Detection], pixels: np.ndarray, cut: bool = False,
        held: bool = False,
    ) -> None:
        """Take frame ``n``'s detections (``cut``: a new scene starts here; ``held``: the
        picture repeats the previous one, see :class:`~.cuts.HeldFrames`)."""
        if cut:
            self._lost.clear()
        live = self.live
        looks = [appearance(pixels, d.landmarks) for d in detections]
        pairs = self._associate(live, detections, looks, cut)
        matched_tracks = {i for i, _ in pairs}
        matched_dets = {j for _, j in pairs}
        for i, j in pairs:
            self._hit(live[i], n, detections[j], looks[j], pixels, held)
        for i, track in enumerate(live):
            if i not in matched_tracks:
                self._miss(track, n, cut, held)
        for j, det in enumerate(detections):
            if j not in matched_dets:
                self._start(n, det, looks[j], pixels)

    @property
    def followable(self) -> bool:
        """Every live track can be followed without the detector on the next frame: it was
        detected on its last frame and its registration holds a reference."""
        return all(t.misses == 0 and t.registrar is not None and t.registrar.following
                   for t in self.live)

    def coast(self, n: int, pixels: np.ndarray, held: bool = False) -> None:
        """Frame ``n`` without detection: each live track's last detection is carried to it by
        the motion its registration found since then (the detector's view moved with the
        face's pixels, its noise kept rather than replaced by a guess), and the smoother takes
        that with the registration; a track the registration loses counts the frame as
        missed. On a ``held`` frame every face stays where it was."""
        for track in self.live:
            if held and not track.misses:
                track.smoother.step(None, held=True)
                track.quality.observe(n, None)
                track.last_followed = n
                continue
            if track.misses or track.registrar is None:
                self._miss(track, n, False, held)
                continue
            registered = track.registrar.follow(pixels, track.smoother.predicted(1))
            if registered is None or track.registered_at_detection is None:
                self._miss(track, n, False)
                continue
            last = track.detections[track.last_detected]
            carried = _carry(last.landmarks, track.registered_at_detection, registered.landmarks)
            track.smoother.step(carried, last.score, registered)
            track.quality.observe(n, None)
            track.last_followed = n
            track.box = _follow(last.box, last.landmarks, carried)

    def finish(self) -> None:
        """End of input: tracks still present are reported even if young."""
        for track in self.live:
            self._confirm(track)

    def faces(self, n: int, frame_index: int, final: bool) -> list[TrackedFace]:
        """The confirmed faces on frame ``n``.

        ``final`` (offline): smoothed values; gaps that ended within the look-ahead are
        interpolated, a gap still open (look-ahead shorter than ``max_gap``) is coasted.
        Otherwise (causal): forward-filtered values, a missed face coasted while its track lives.
        """
        out = []
        for track in self.tracks:
            if not track.confirmed or n < track.first:
                continue
            det = track.detections.get(n)
            if final:
                if n > track.last_followed and track.ended:
                    continue
                landmarks = track.smoother.smoothed(n)
                box = track.box_at(n, landmarks)
            else:
                if track.ended or n != track.smoother.last_frame:
                    continue
                landmarks = track.smoother.filtered(n)
                box = det.box if det is not None else track.box
            out.append(
                TrackedFace(
                    track_id=int(track.track_id),  # type: ignore[arg-type]
                    frame_index=frame_index,
                    box=box,
                    score=None if det is None else det.score,
                    landmarks_raw=None if det is None else det.landmarks,
                    landmarks=landmarks,
                    interpolated=det is None,
                    weight=track.quality.weight(n),
                    held=track.smoother.held(n),
                )
            )
        return sorted(out, key=lambda f: f.track_id)

    def forget_before(self, n: int) -> None:
        """Drop state only frames before ``n`` needed (keeping one detection for interpolation)."""
        kept = []
        for track in self.tracks:
            if track.ended and track.last_followed < n:
                continue
            older = [k for k in track.detections if k < n]
            for k in sorted(older)[:-1]:
                del track.detections[k]
            track.smoother.forget_before(n)
            kept.append(track)
        self.tracks = kept

    # -- internals -------------------------------------------------------------------------

    def _associate(
        self,
        live: list[Track],
        detections: Sequence[Detection],
        looks: list[np.ndarray],
        cut: bool,
    ) -> list[tuple[int, int]]:
        if not live or not detections:
            return []
        g = self.gates
        boxes = np.stack([t.predicted_box() for t in live])
        iou = box_iou(boxes, np.stack([d.box for d in detections]))
        cost = np.full(iou.shape, _UNMATCHABLE)
        for i, track in enumerate(live):
            expected = track.smoother.predicted(1)
            size = max(float(boxes[i, 2] - boxes[i, 0]), 1.0)
            for j, det in enumerate(detections):
                lm = float(np.linalg.norm(det.landmarks - expected, axis=1).mean()) / size
                app = 1.0 - float(track.look @ looks[j])
                if cut:
                    ok = iou[i, j] >= g.cut_min_iou and lm <= g.cut_max_landmark
                    ok = ok and app <= g.cut_max_appearance
                else:
                    ok = (iou[i, j] >= g.min_iou or lm <= g.max_landmark / 2)
                    ok = ok and lm <= g.max_landmark and app <= g.max_appearance
                if ok:
                    cost[i, j] = (1.0 - iou[i, j]) + lm + g.appearance_weight * app
        rows, cols = linear_sum_assignment(cost)
        return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)
                if cost[i, j] < _UNMATCHABLE]

    def _hit(self, track: Track, n: int, det: Detection, look: np.ndarray,
             pixels: np.ndarray, held: bool = False) -> None:
        if held:  # the registration would measure the same picture again
            track.smoother.step(det.landmarks, det.score, None, held=True)
        else:
            registered = None if track.registrar is None else track.registrar.step(
                pixels, det.landmarks)
            track.smoother.step(det.landmarks, det.score, registered)
            track.registered_at_detection = (None if registered is None
                                             else registered.landmarks)
        track.quality.observe(n, det)
        track.detections[n] = det
        track.box = det.box
        mixed = 0.7 * track.look + 0.3 * look
        track.look = mixed / max(float(np.linalg.norm(mixed)), 1e-6)
        track.last_detected = track.last_followed = n
        track.misses = 0
        track.hits += 0 if held else 1  # a repeated picture is not a second sighting
        if track.hits >= self.options.min_hits:
            self._confirm(track)

    def _miss(self, track: Track, n: int, cut: bool, held: bool = False) -> None:
        predicted = track.predicted_box()
        track.misses += 1
        if cut or not track.confirmed or track.misses > self.options.max_gap:
            track.ended = True
            if track.confirmed and not cut:
                self._lost.append(track)
            return
        track.smoother.step(None, held=held)
        track.quality.observe(n, None)
        track.box = track.box if held else predicted

    def _start(self, n: int, det: Detection, look: np.ndarray, pixels: np.ndarray) -> None:
        smoother = LandmarkSmoother(n, self.options.smooth, self.tuning)
        registrar = FaceRegistrar() if self.options.register else None
        registered = None if registrar is None else registrar.step(pixels, det.landmarks)
        smoother.step(det.landmarks, det.score, registered)
        track = Track(self._next_key, n, smoother, det.box, look, {n: det}, last_detected=n,
                      last_followed=n, hits=1, registrar=registrar,
                      registered_at_detection=None if registered is None else registered.landmarks)
        track.quality.observe(n, det)
        self._next_key += 1
        self.tracks.append(track)
        # Without look-ahead a face confirmed on its second detection has lost its first frame;
        # a confident first detection is taken at once instead.
        sure = self.options.causal and det.score >= self.options.confirm_score
        if track.hits >= self.options.min_hits or sure:
            self._confirm(track)

    def _confirm(self, track: Track) -> None:
        if track.track_id is not None:
            return
        lost = self._continued(track)
        if lost is not None:
            self._lost.remove(lost)
            track.track_id = lost.track_id
            return
        track.track_id = self._next_id
        self._next_id += 1

    def _continued(self, track: Track) -> Track | None:
        """The lost track (same shot, recent) that ``track`` most plausibly continues."""
        g = self.gates
        n = track.smoother.last_frame
        self._lost = [t for t in self._lost if n - t.last_detected <= g.reid_frames]
        here, _, _ = pose_and_shape(track.smoother.predicted(0))
        size = max(float(track.box[2] - track.box[0]), 1.0)
        best, best_cost = None, np.inf
        for lost in self._lost:
            ahead = n - lost.smoother.last_frame
            heading, _, _ = pose_and_shape(lost.smoother.predicted(ahead))
            distance = float(np.linalg.norm(here[:2] - heading[:2])) / size
            app = 1.0 - float(track.look @ lost.look)
            if distance > g.reid_max_distance or app > g.reid_max_appearance:
                continue
            cost = app + 0.5 * distance
            if cost < best_cost:
                best, best_cost = lost, cost
        return best
