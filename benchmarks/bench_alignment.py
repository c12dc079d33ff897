"""Alignment benchmark: do the smoothed landmarks stay on the face, and follow it?

Run ``python -m benchmarks.bench_alignment [CLIP ...] [--out DIR]`` from the repository root
(``--help`` for options). It needs ``../shared`` (media and the YuNet model;
``VIDRESTORE_SHARED`` moves it). All distances are in aligned-face pixels (the 512x512 template
the restorer sees): frame pixels times that frame's frame-to-face scale.

Methods, each on the same detections of the same face:

* ``raw`` - the detector's landmarks (dithered grid, what the smoother sees);
* ``gaussian3`` - a centred Gaussian (sigma 3 frames) over the raw landmarks (offline);
* ``one-euro`` - a causal One Euro filter (Casiez et al. 2012) per coordinate over the raw
  landmarks, its speed measured in aligned px/s; ``min_cutoff`` 3.5 Hz, ``beta`` 0.002 s/px,
  ``d_cutoff`` 1 Hz: the pair of a grid (``--tune-one-euro``) whose output on the first 150
  frames of ``vr_face_4.mp4`` comes closest (RMS) to the centred sigma-3 Gaussian of the same
  detections (4.1 px, raw 6.5 px), then fixed. The optimum is flat (within 0.05 px for
  ``min_cutoff`` 2.5-4 Hz, ``beta`` 0.001-0.01); lower cutoffs lag too much for this target;
* ``ours-offline`` / ``ours-causal`` - ``FaceStream`` with ``FaceOptions()`` /
  ``FaceOptions(causal=True)``. Offline that is the Kalman filter (pose and shape, fused with
  the registration: its rotation and scale, the centroid mostly from the detections), the
  fixed-lag RTS pass and the drift guard (at most 20 px from the detections' sigma-2 low-pass;
  :class:`SmootherTuning`), with repeated pictures held (:class:`HeldFrames`);
* ``ours-noreg`` - ``FaceStream`` with ``FaceOptions(register=False)``, offline;
* ``ours-causal-sS`` (``--causal-smooth S,...``) - causal at smoothing strength ``S``: how much
  steadier a causal estimate gets, and what that costs in drift and lag;
* ``ours-every<N>`` / ``ours-causal-every<N>`` (``--detect-every N,...``) - offline / causal
  with the detector on every Nth frame (``FaceOptions(detect_every=N)``), the registration
  following the face in between: what fewer detections cost in alignment;
* ``ours[K=V,...]`` (``--tuning K=V,...``, repeatable) - offline with those
  :class:`SmootherTuning` fields changed; ``ours-causal[K=V,...]`` (``--tuning causal:K=V,...``)
  the same for the causal smoother;
* ``--causal-frontier`` - per real clip, the steadiest One Euro setting of a grid whose drift
  p95 stays within each causal bar (``gaussian3`` + 4 px, ``one-euro`` + 4 px): how much jitter
  reduction a simple causal filter can reach on that clip at all (:func:`causal_frontier`);
* ``ours-rts`` - offline, without the post stage and the guard, and with the earlier
  registration weighting (``PRIOR_TUNING``: the smoother as it was before them), for
  comparison.

**Real clips** (every video in ``shared/media`` plus the paths given; ``--frames`` each). The
raw detections of the offline run are the reference of every method; the other runs' faces are
matched to them frame by frame. Per track of at least 30 frames: the *consensus error*, the
RMS distance from the detector's consensus (:func:`consensus`: the median of 16 detections of
each frame on 16 shifts of the detector's grid; no other frame is used, so the face's true
motion is all in it), *jitter reduction* (:func:`~vidrestore.faces.metrics.jitter_reduction`:
raw jitter / method jitter, same scales, on the frames that are not repeats of the picture
before: both shared clips repeat pictures, and second differences across a repeat measure
the frame-rate conversion's jumps; the JSON also has it on all frames), and *drift*
(:func:`~vidrestore.faces.metrics.drift`: distance to the sigma-2 Gaussian low-pass of the raw
detections; median, 95th percentile, share of frames beyond 20 px), and the
95th percentile of the *detector offset* (:func:`~vidrestore.faces.metrics.detector_offset`:
the sigma-2 low-pass of estimate minus raw). Jitter reduction and drift both reward rounding
off true motion: ``lp_s13.mp4`` (15 pictures a second at 25 fps) bobs by 20-25 frame px from
one picture to the next, and there ``gaussian3`` is 11x steadier than the detections on all
frames yet 3.3x further than they are from the consensus, up to 60 aligned px off the face
(see the picture). The consensus error tells the two apart; the offset counts only lasting
disagreement with the detector. The table shows each clip's longest track; the JSON
has them all.

**Ground-truth clips** (:mod:`benchmarks.groundtruth`): ``vr_face_4.mp4`` moved by known rolls,
zooms, pans and shake, shrunk, degraded and encoded; the truth is carried through the motion.
Per method: path error (:func:`~vidrestore.faces.metrics.path_error`, offset removed), its
ratio to raw's, lag (:func:`~vidrestore.faces.metrics.lag`, frames) and jitter reduction; and,
for reference, the slow part of the detector's error (:func:`slow_error_floor`): the truth plus a
Gaussian of the detections' error, which no smoother of the detections alone can beat.

Output: the tables on stdout, every figure in ``benchmarks/results/alignment.json`` and, per
clip, ``benchmarks/results/alignment_<clip>.png``: the aligned crops (512 shown at 128) of the
6 worst frames of ``ours-offline`` (by distance from the consensus; by path error on
ground-truth clips), ``ours`` above ``gaussian3``. Green: the template points; red: the raw
detection carried into the crop; yellow: the consensus (the true landmarks on ground truth).
A well-aligned crop has its red (yellow) points on the green ones.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vidrestore.faces import FaceOptions, FaceStream, FrameFaces, create_detector
from vidrestore.faces.align import (
    TEMPLATE_512,
    affine_scale,
    similarity_transform,
    transform_points,
    warp_face,
)
from vidrestore.faces.cuts import HeldFrames
from vidrestore.faces.detectors import dither_shift
from vidrestore.faces.metrics import (
    aligned_scales,
    detector_offset,
    drift,
    drift_summary,
    fill_gaps,
    gaussian_baseline,
    jitter_reduction,
    lag,
    path_error,
    path_errors,
)
from vidrestore.faces.smooth import SmootherTuning
from vidrestore.io.frame import Frame
from vidrestore.io.reader import VideoReader

from .groundtruth import GT_CLIPS, MotionSpec, build_clip

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDRESTORE_SHARED", REPO.parent / "shared"))
MEDIA = SHARED / "media"
YUNET = SHARED / "weights-mirror" / "face_detection_yunet_2026may.onnx"
RESULTS = REPO / "benchmarks" / "results"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")

MIN_TRACK = 30
CONSENSUS_SHOTS = 16
DRIFT_LIMIT = 20.0
ONE_EURO = {"min_cutoff": 3.5, "beta": 0.002, "d_cutoff": 1.0}
PRIOR_TUNING = SmootherTuning(maneuver_max=400.0, registration_rel=0.6,
                              registration_translation=1.0, post_sigma=0.0, guard_px=0.0)
RUNS: dict[str, tuple[FaceOptions, SmootherTuning | None]] = {
    "ours-offline": (FaceOptions(), None),
    "ours-causal": (FaceOptions(causal=True), None),
    "ours-noreg": (FaceOptions(register=False), None),
    "ours-rts": (FaceOptions(), PRIOR_TUNING),
}
METHODS = ("raw", "gaussian3", "one-euro", *RUNS)


# -- running the face stage -------------------------------------------------------------------


def read_clip(path: Path, limit: int | None = None) -> tuple[list[Frame], Fraction]:
    """The first ``limit`` frames of a video and its frame rate."""
    frames = []
    with VideoReader(path) as reader:
        rate = Fraction(reader.info.avg_rate)
        for frame in reader:
            if limit is not None and frame.index >= limit:
                break
            frames.append(frame)
    return frames, rate


def run_stream(frames: Sequence[Frame], options: FaceOptions, yunet: Path,
               tuning: SmootherTuning | None = None) -> list[FrameFaces]:
    """``FaceStream`` over ``frames`` (push each, then flush)."""
    stream = FaceStream(create_detector("yunet", options, model_path=yunet), options, tuning)
    out: list[FrameFaces] = []
    for frame in frames:
        out += stream.push(frame)
    return out + stream.flush()


@dataclass
class Track:
    """One track of a run: smoothed and raw landmarks on frames ``first`` .. ``first + T - 1``
    (NaN where the track has no face, raw NaN where the detector missed it)."""

    track_id: int
    first: int
    smooth: np.ndarray
    raw: np.ndarray

    @property
    def frames(self) -> range:
        return range(self.first, self.first + len(self.smooth))

    @property
    def detected(self) -> int:
        return int(np.isfinite(self.raw).all(axis=(1, 2)).sum())


def tracks_of(result: Sequence[FrameFaces]) -> list[Track]:
    """Every track of a run, longest first."""
    faces: dict[int, dict[int, tuple[np.ndarray, np.ndarray | None]]] = {}
    for ff in result:
        for f in ff.faces:
            faces.setdefault(f.track_id, {})[f.frame_index] = (f.landmarks, f.landmarks_raw)
    tracks = []
    for tid, by_frame in faces.items():
        first, last = min(by_frame), max(by_frame)
        smooth = np.full((last - first + 1, 5, 2), np.nan)
        raw = smooth.copy()
        for n, (s, r) in by_frame.items():
            smooth[n - first] = s
            if r is not None:
                raw[n - first] = r
        tracks.append(Track(tid, first, smooth, raw))
    return sorted(tracks, key=lambda t: (-len(t.smooth), t.first))


def consensus(frames: Sequence[Frame], track: Track, yunet: Path,
              shots: int = CONSENSUS_SHOTS) -> tuple[np.ndarray, dict[str, float]]:
    """Where the detector puts the track's face on each frame when asked ``shots`` times:
    the per-coordinate median over detections of the same picture with the detector's grid
    shifted ``shots`` ways (:func:`~vidrestore.faces.detectors.dither_shift` 0 ..
    ``shots - 1``), of the face nearest the track's raw detection (its smoothed landmarks
    where the detector missed it), NaN where none is within half an eye distance.

    A reference on real footage without ground truth that uses no other frame: the grid's
    noise is averaged away, so what is left is where the detector sees the face on that very
    frame, fast true motion included (a temporal low-pass rounds it off). Its own noise is
    what the shots disagree on, over ``sqrt(shots)``; it keeps the detector's error that
    does not depend on the grid (pose, expression, blur). Also returns the median over
    frames of one shot's spread (RMS distance from the median) and of that standard error,
    aligned px."""
    detector = create_detector("yunet", FaceOptions(), model_path=yunet)
    shifts = [dither_shift(k) for k in range(shots)]
    reference = np.where(np.isfinite(track.raw), track.raw, track.smooth)
    shots_at = np.full((len(track.smooth), shots, 5, 2), np.nan)
    for k, n in enumerate(track.frames):
        ref = reference[k]
        if not np.isfinite(ref).all():
            continue
        limit = 0.5 * float(_eye_distance(ref))
        for j, dets in enumerate(detector.detect([frames[n].analysis] * shots, shifts=shifts)):
            near = [(float(np.linalg.norm(d.landmarks - ref, axis=1).mean()), d.landmarks)
                    for d in dets]
            if near and (best := min(near, key=lambda x: x[0]))[0] < limit:
                shots_at[k, j] = best[1]
    agreed = np.isfinite(shots_at).all(axis=(2, 3)).sum(axis=1) >= (shots + 1) // 2
    median = np.full(reference.shape, np.nan)
    if not agreed.any():
        return median, {"one_shot_px": float("nan"), "standard_error_px": float("nan")}
    median[agreed] = np.nanmedian(shots_at[agreed], axis=1)
    distance = np.linalg.norm(shots_at - median[:, None], axis=3)  # (T, shots, 5)
    spread = float(np.median(np.sqrt(np.nanmean(distance[agreed] ** 2, axis=(1, 2)))
                             * aligned_scales(median[agreed])))
    noise = {"one_shot_px": spread, "standard_error_px": spread / float(np.sqrt(shots))}
    return median, noise


def _eye_distance(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[..., 1, :] - points[..., 0, :], axis=-1)


def follow(reference: np.ndarray, frames: range, result: Sequence[FrameFaces],
           max_distance: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed and raw landmarks (T, 5, 2) of the face of ``result`` that is, on each frame of
    ``frames``, nearest to ``reference`` (T, 5, 2; by its raw landmarks where it has them),
    NaN where no face is within ``max_distance`` eye distances."""
    by_frame = {ff.frame.index: ff.faces for ff in result}
    smooth = np.full((len(frames), 5, 2), np.nan)
    raw = smooth.copy()
    for k, n in enumerate(frames):
        ref = reference[k]
        if not np.isfinite(ref).all():
            continue
        best, best_d = None, max_distance * float(_eye_distance(ref))
        for f in by_frame.get(n, []):
            pts = f.landmarks if f.landmarks_raw is None else f.landmarks_raw
            d = float(np.linalg.norm(pts - ref, axis=1).mean())
            if d < best_d:
                best, best_d = f, d
        if best is not None:
            smooth[k] = best.landmarks
            if best.landmarks_raw is not None:
                raw[k] = best.landmarks_raw
    return smooth, raw


# -- the One Euro filter ----------------------------------------------------------------------


def one_euro(raw: np.ndarray, rate: float, min_cutoff: float = ONE_EURO["min_cutoff"],
             beta: float = ONE_EURO["beta"], d_cutoff: float = ONE_EURO["d_cutoff"]) -> np.ndarray:
    """Causal One Euro filter of a (T, 5, 2) track, each coordinate on its own.

    The cutoff is ``min_cutoff + beta * |speed|`` (Hz), the speed (low-passed at ``d_cutoff``)
    in aligned px/s with the current detection's frame-to-face scale, so one setting fits faces
    of every size. Frames without a detection (NaN) repeat the last output.
    """
    p = np.asarray(raw, dtype=np.float64)
    out = np.full_like(p, np.nan)
    x_hat = dx_hat = None
    dt = 0.0
    for t in range(len(p)):
        dt += 1.0 / rate
        x = p[t]
        if not np.isfinite(x).all():
            if x_hat is not None:
                out[t] = x_hat
            continue
        if x_hat is None:
            x_hat, dx_hat = x.copy(), np.zeros_like(x)
        else:
            scale = affine_scale(similarity_transform(x))
            a_d = 1.0 / (1.0 + 1.0 / (2 * np.pi * d_cutoff * dt))
            dx_hat = dx_hat + a_d * ((x - x_hat) / dt - dx_hat)
            cutoff = min_cutoff + beta * np.abs(dx_hat) * scale
            a = 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))
            x_hat = x_hat + a * (x - x_hat)
        out[t] = x_hat
        dt = 0.0
    if np.isnan(out[0]).any():  # before the first detection: the first detection
        out = fill_gaps(out)
    return out


def tune_one_euro(yunet: Path, frames: int) -> dict:
    """Grid search of the One Euro settings on ``vr_face_4.mp4``: RMS distance (aligned px) of
    its output to the centred sigma-3 Gaussian of the same detections."""
    clip, rate = read_clip(MEDIA / "vr_face_4.mp4", frames)
    track = tracks_of(run_stream(clip, FaceOptions(), yunet))[0]
    target = gaussian_baseline(track.raw, 3)
    scale = np.array([affine_scale(similarity_transform(p)) for p in target])
    grid = {}
    for mc in (0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 7.0, 10.0):
        for beta in (0.001, 0.002, 0.003, 0.005, 0.01, 0.03, 0.1):
            est = one_euro(track.raw, float(rate), mc, beta)
            d = np.linalg.norm(est - target, axis=2) * scale[:, None]
            grid[(mc, beta)] = float(np.sqrt(np.mean(d**2)))
    best = min(grid, key=grid.get)
    print(f"one-euro tuning on vr_face_4.mp4 ({len(track.raw)} frames): RMS to gaussian3, px")
    betas = sorted({b for _, b in grid})
    print("  min_cutoff \\ beta " + "".join(f"{b:>8}" for b in betas))
    for mc in sorted({m for m, _ in grid}):
        print(f"  {mc:>17} " + "".join(f"{grid[(mc, b)]:8.3f}" for b in betas))
    chosen = one_euro(track.raw, float(rate), *best)
    raw_rms = np.sqrt(np.mean((np.linalg.norm(fill_gaps(track.raw) - target, axis=2)
                               * scale[:, None]) ** 2))
    print(f"  best: min_cutoff {best[0]}, beta {best[1]} ({grid[best]:.3f} px; raw "
          f"{raw_rms:.3f} px); jitter reduction {jitter_reduction(chosen, track.raw):.1f}x, "
          f"drift p95 {drift_summary(drift(chosen, track.raw)).p95:.2f} px")
    return {"min_cutoff": best[0], "beta": best[1], "rms_to_gaussian3": grid[best]}


def causal_frontier(raw: np.ndarray, rate: float, bars: dict[str, float]) -> dict:
    """The steadiest causal filter of a family on one track, under each drift bar: the One
    Euro filter over a grid of ``min_cutoff`` (0.1-6 Hz; with ``beta`` 0 that is a plain
    exponential average) and ``beta``, scored like every method. It tells whether a causal
    target (jitter reduction at a drift p95 bar) is within reach of a simple causal filter on
    this clip at all."""
    grid = []
    for mc in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0):
        for beta in (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.03, 0.1):
            est = one_euro(raw, rate, mc, beta)
            grid.append({"min_cutoff": mc, "beta": beta,
                         "jitter_reduction": jitter_reduction(est, raw),
                         "drift_p95": drift_summary(drift(est, raw)).p95})
    best: dict[str, dict | None] = {}
    for name, bar in bars.items():
        within = [g for g in grid if g["drift_p95"] <= bar]
        best[name] = max(within, key=lambda g: g["jitter_reduction"]) if within else None
    return {"bars": bars, "best": best, "grid": grid}


# -- scoring ----------------------------------------------------------------------------------


def _rounded(values: np.ndarray) -> list:
    return [None if not np.isfinite(v) else round(float(v), 3) for v in values]


def _summary(per_frame: np.ndarray) -> tuple[float, float, float, int]:
    """p50, p95, share beyond ``DRIFT_LIMIT`` and frame count; NaN where nothing was measured."""
    if not np.isfinite(per_frame).any():
        return float("nan"), float("nan"), float("nan"), 0
    s = drift_summary(per_frame, DRIFT_LIMIT)
    return s.p50, s.p95, s.beyond, s.frames


def held_frames(frames: Sequence[Frame]) -> np.ndarray:
    """Per frame: whether its picture repeats an earlier one (:class:`HeldFrames`)."""
    held = HeldFrames()
    return np.array([held.update(f.analysis) for f in frames])


def real_scores(estimate: np.ndarray, raw: np.ndarray, agreed: np.ndarray,
                new: np.ndarray) -> dict:
    """Jitter reduction (on the ``new`` pictures, and on all frames), drift and
    detector-offset summaries of one method on one track, and its error against the
    detector's ``agreed`` landmarks (:func:`consensus`; NaN for what cannot be measured: a
    run that did not report the face)."""
    d, off = drift(estimate, raw), detector_offset(estimate, raw)
    both = np.isfinite(estimate).all(axis=(1, 2)) & np.isfinite(agreed).all(axis=(1, 2))
    error = (path_error(estimate[both], agreed[both], remove_offset=False) if both.any()
             else float("nan"))
    p50, p95, beyond, frames = _summary(d)
    o50, o95, obeyond, _ = _summary(off)
    reduction = {}
    for name, keep in (("new", new), ("all", None)):
        try:
            reduction[name] = jitter_reduction(estimate, raw, keep=keep)
        except ValueError:
            reduction[name] = float("nan")
    return {"jitter_reduction": reduction["new"], "jitter_reduction_all_frames": reduction["all"],
            "consensus_error": error,
            "drift_p50": p50, "drift_p95": p95,
            "beyond_20px": beyond, "frames": frames, "offset_p50": o50, "offset_p95": o95,
            "offset_beyond_20px": obeyond, "per_frame_drift": _rounded(d),
            "per_frame_offset": _rounded(off)}


def baselines(raw: np.ndarray, rate: float) -> dict[str, np.ndarray]:
    return {"raw": raw, "gaussian3": gaussian_baseline(raw, 3),
            "one-euro": one_euro(raw, rate)}


def with_variants(strengths: Sequence[float], tunings: Sequence[str],
                  every: Sequence[int] = ()
                  ) -> dict[str, tuple[FaceOptions, SmootherTuning | None]]:
    """:data:`RUNS` plus ``ours-causal-sS``, the causal smoother at each strength ``S``
    (``--smooth``), and ``ours[K=V,...]`` (``ours-causal[K=V,...]`` for a ``causal:`` spec),
    the offline (causal) smoother with those :class:`SmootherTuning` fields changed: to see
    what other settings cost, side by side."""
    extra: dict[str, tuple[FaceOptions, SmootherTuning | None]] = {
        f"ours-causal-s{s:g}": (FaceOptions(causal=True, smooth=s), None) for s in strengths}
    for n in every:
        extra[f"ours-every{n}"] = (FaceOptions(detect_every=n), None)
        extra[f"ours-causal-every{n}"] = (FaceOptions(causal=True, detect_every=n), None)
    for spec in tunings:
        causal = spec.startswith("causal:")
        items = spec.removeprefix("causal:").split(",")
        fields = dict(item.split("=", 1) for item in items if item.strip())
        try:
            tuning = SmootherTuning(**{k.strip(): float(v) for k, v in fields.items()})
        except (TypeError, ValueError) as exc:
            raise SystemExit(f"--tuning {spec!r}: {exc}") from None
        name = f"ours-causal[{spec.removeprefix('causal:')}]" if causal else f"ours[{spec}]"
        extra[name] = (FaceOptions(causal=causal), tuning)
    return {**RUNS, **extra}


def estimates_on(track: Track, runs: dict[str, list[FrameFaces]],
                 rate: float) -> dict[str, np.ndarray]:
    """Every method's landmarks on the frames of an offline ``track``."""
    out = baselines(track.raw, rate)
    out["ours-offline"] = track.smooth
    reference = np.where(np.isfinite(track.raw), track.raw, track.smooth)
    for name, result in runs.items():
        if name != "ours-offline":
            out[name] = follow(reference, track.frames, result)[0]
    return out


def bench_real(path: Path, limit: int, yunet: Path, settings: dict | None = None,
               frontier: bool = False) -> dict:
    frames, rate = read_clip(path, limit)
    runs = {name: run_stream(frames, opts, yunet, tuning)
            for name, (opts, tuning) in (settings or RUNS).items()}
    tracks = [t for t in tracks_of(runs["ours-offline"]) if len(t.smooth) >= MIN_TRACK]
    h, w = frames[0].pixels.shape[:2]
    held = held_frames(frames)
    report = {"path": str(path), "frames": len(frames), "size": [w, h], "rate": float(rate),
              "held_frames": int(held.sum()), "tracks": []}
    head = f"real  {path.name} ({len(frames)} frames, {w}x{h})"
    if not tracks:
        print(f"{head}: no track of {MIN_TRACK} frames or more")
        return report
    first_est = None
    for track in tracks:
        est = estimates_on(track, runs, float(rate))
        agreed, noise = consensus(frames, track, yunet)
        if first_est is None:
            first_est, first_agreed = est, agreed
        new = ~held[track.first:track.first + len(track.smooth)]
        scores = {m: real_scores(e, track.raw, agreed, new) for m, e in est.items()}
        for m in scores.values():
            m["consensus_ratio_to_raw"] = m["consensus_error"] / scores["raw"]["consensus_error"]
        report["tracks"].append({
            "track_id": track.track_id, "first": track.first, "frames": len(track.smooth),
            "detected": track.detected, "consensus_noise": noise, "methods": scores})
    main = report["tracks"][0]
    others = f"; {len(tracks) - 1} more in the JSON" if len(tracks) > 1 else ""
    print(f"{head}, longest track {main['track_id']}: {main['frames']} frames "
          f"({main['detected']} detected){others}; {report['held_frames']} held frames "
          "(repeated pictures): jitter is measured on the others")
    noise = main["consensus_noise"]
    print(f"  consensus of {CONSENSUS_SHOTS} shifted detections a frame: one shot's spread "
          f"{noise['one_shot_px']:.2f} px, the median's standard error "
          f"{noise['standard_error_px']:.2f} px")
    print(f"  {'method':<22} {'jitter red.':>11} {'cons. err':>9} {'vs raw':>7} "
          f"{'drift p50':>10} {'drift p95':>10} {'> 20 px':>8} {'offset p95':>11}")
    for m, s in main["methods"].items():
        print(f"  {m:<22} {s['jitter_reduction']:10.2f}x {s['consensus_error']:9.2f} "
              f"{s['consensus_ratio_to_raw']:6.2f}x {s['drift_p50']:10.2f} "
              f"{s['drift_p95']:10.2f} {100 * s['beyond_20px']:7.1f} % {s['offset_p95']:11.2f}")
    if frontier:
        scores = main["methods"]
        bars = {f"{b} + 4": scores[b]["drift_p95"] + 4.0 for b in ("gaussian3", "one-euro")}
        main["causal_frontier"] = found = causal_frontier(tracks[0].raw, float(rate), bars)
        for name, g in found["best"].items():
            print(f"  causal frontier, drift p95 <= {name} ({bars[name]:.2f}): " + (
                "no One Euro setting" if g is None else
                f"One Euro at most {g['jitter_reduction']:.2f}x (min_cutoff {g['min_cutoff']} Hz, "
                f"beta {g['beta']}, drift p95 {g['drift_p95']:.2f})"))
    track, est, agreed = tracks[0], first_est, first_agreed
    scales = aligned_scales(fill_gaps(agreed))
    away = {m: np.linalg.norm(est[m] - agreed, axis=2).mean(axis=1) * scales
            for m in ("ours-offline", "gaussian3")}
    d = np.nan_to_num(away["ours-offline"], nan=-1.0)
    worst = np.argsort(-d)[:6]
    worst = worst[d[worst] >= 0]
    cells = []
    for k in worst:
        n = track.first + int(k)
        cells.append((n, frames[n].pixels, est["ours-offline"][k], est["gaussian3"][k],
                      track.raw[k], agreed[k], f"{d[k]:.1f}",
                      f"{away['gaussian3'][k]:.1f}"))
    picture = RESULTS / f"alignment_{path.stem}.png"
    save_grid(picture, f"{path.name}: the 6 frames where ours-offline is furthest from the "
              f"consensus of {CONSENSUS_SHOTS} detections (px)", cells, truth_name="consensus")
    report["picture"] = str(picture)
    return report


def gt_scores(estimate: np.ndarray, truth: np.ndarray, raw: np.ndarray, mask: np.ndarray,
              span: slice, new: np.ndarray) -> dict:
    lag_input = fill_gaps(estimate[span]) if np.isfinite(estimate[span]).any() else None
    return {"path_error": path_error(estimate[mask], truth[mask]),
            "lag": lag(lag_input, truth[span]) if lag_input is not None else float("nan"),
            "jitter_reduction": jitter_reduction(estimate, raw, keep=new)}


def slow_error_floor(raw: np.ndarray, truth: np.ndarray, e_raw: float,
                     sigmas: Sequence[int] = (3, 8, 20)) -> dict[str, float]:
    """Path error (ratio to raw's) of the truth plus a Gaussian (sigma frames) of the
    detector's error: what would be left if a method knew the true motion exactly and averaged
    the detections' error over that many frames. The slow part of the detector's error (it
    follows the pose, the expression, the degradation) stays: a smoother working from the
    detections alone cannot go below it, only the registration's own measurement can."""
    return {str(s): path_error(truth + gaussian_baseline(raw - truth, s), truth) / e_raw
            for s in sigmas}


def longest_run(mask: np.ndarray) -> slice:
    best, start = (0, 0), None
    for i, v in enumerate([*mask, False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return slice(*best)


def bench_groundtruth(spec: MotionSpec, out_dir: Path, yunet: Path,
                      settings: dict | None = None) -> dict:
    path, truth = build_clip(MEDIA / "vr_face_4.mp4", spec, out_dir, yunet)
    frames, rate = read_clip(path)
    runs = {name: run_stream(frames, opts, yunet, tuning)
            for name, (opts, tuning) in (settings or RUNS).items()}
    span = range(len(frames))
    ours = {name: follow(truth, span, result) for name, result in runs.items()}
    raw = ours["ours-offline"][1]
    est = baselines(raw, float(rate)) | {name: s for name, (s, _) in ours.items()}
    found = np.isfinite(raw).all(axis=(1, 2))
    all_ours = np.all([np.isfinite(s).all(axis=(1, 2)) for s, _ in ours.values()], axis=0)
    mask = found & all_ours
    span_lag = longest_run(all_ours)
    new = ~held_frames(frames)
    scores = {m: gt_scores(e, truth, raw, mask, span_lag, new) for m, e in est.items()}
    e_raw = scores["raw"]["path_error"]
    for s in scores.values():
        s["ratio_to_raw"] = s["path_error"] / e_raw
    w, h = spec.canvas
    print(f"ground truth  {spec.name} ({len(frames)} frames, {w}x{h}, face {spec.face_px:.0f} px"
          f"; raw found on {int(found.sum())}, all methods on {int(mask.sum())} frames)")
    print(f"  {'method':<22} {'path err':>9} {'vs raw':>7} {'lag (f)':>8} {'jitter red.':>11}")
    for m, s in scores.items():
        print(f"  {m:<22} {s['path_error']:9.3f} {s['ratio_to_raw']:6.2f}x {s['lag']:+8.2f} "
              f"{s['jitter_reduction']:10.1f}x")
    floor = slow_error_floor(raw[mask], truth[mask], e_raw)
    print("  slow detector error (truth + Gaussian of raw - truth; no method can know the "
          "truth): " + ", ".join(f"sigma {k} {v:.2f}x" for k, v in floor.items()))
    per_frame = {m: np.full(len(truth), np.nan) for m in est}
    for m in per_frame:
        err = path_errors(est[m][mask], truth[mask])
        per_frame[m][mask] = np.linalg.norm(err, axis=2).mean(axis=1)
        scores[m]["per_frame_error"] = _rounded(per_frame[m])
    d = np.nan_to_num(per_frame["ours-offline"], nan=-1.0)
    worst = np.argsort(-d)[:6]
    cells = [(int(k), frames[k].pixels, est["ours-offline"][k], est["gaussian3"][k], raw[k],
              truth[k], f"{d[k]:.1f}", f"{per_frame['gaussian3'][k]:.1f}")
             for k in worst if d[k] >= 0]
    picture = RESULTS / f"alignment_{spec.name}.png"
    save_grid(picture, f"{spec.name}: the 6 frames of largest ours-offline error (px, mean "
              "offset removed)", cells)
    return {"path": str(path), "spec": spec.describe(), "frames": len(frames),
            "raw_frames": int(found.sum()), "measured_frames": int(mask.sum()),
            "lag_frames": [span_lag.start, span_lag.stop], "methods": scores,
            "slow_error_floor": floor,
            "picture": str(picture)}


# -- pictures ---------------------------------------------------------------------------------


CELL = 128
GREEN, RED, YELLOW = (0, 220, 0), (255, 40, 40), (255, 230, 0)


def crop(pixels: np.ndarray, landmarks: np.ndarray, raw: np.ndarray | None,
         truth: np.ndarray | None) -> np.ndarray:
    """The aligned face of ``landmarks`` at ``CELL`` px with the template points (green), the
    raw detection (red) and the truth (yellow) drawn in it."""
    if pixels.dtype != np.uint8:
        pixels = (pixels // 257).astype(np.uint8)
    affine = similarity_transform(landmarks)
    face = cv2.resize(warp_face(pixels, affine), (CELL, CELL), interpolation=cv2.INTER_AREA)
    k = CELL / 512

    def dots(points: np.ndarray, colour: tuple[int, int, int], radius: float,
             ring: bool = False) -> None:
        for x, y in points * k:
            centre, r = (round(x * 4), round(y * 4)), round(radius * 4)
            if ring:
                cv2.circle(face, centre, r, colour, 1, cv2.LINE_AA, shift=2)
            else:
                cv2.circle(face, centre, r + 4, (0, 0, 0), -1, cv2.LINE_AA, shift=2)
                cv2.circle(face, centre, r, colour, -1, cv2.LINE_AA, shift=2)

    dots(np.asarray(TEMPLATE_512), GREEN, 3.5, ring=True)
    if raw is not None and np.isfinite(raw).all():
        dots(transform_points(affine, raw), RED, 1.5)
    if truth is not None:
        dots(transform_points(affine, truth), YELLOW, 1.5)
    return face


def save_grid(path: Path, title: str, cells: list, truth_name: str = "truth") -> None:
    """Columns of (frame, pixels, ours, gaussian3, raw, truth, ours label, g3 label): ours above,
    gaussian3 below."""
    font, small = cv2.FONT_HERSHEY_SIMPLEX, 0.38
    left, top, label = 86, 34, 14
    width = left + CELL * max(1, len(cells))
    img = np.full((top + 2 * (CELL + label), width, 3), 255, np.uint8)
    cv2.putText(img, title, (4, 13), font, small, (0, 0, 0), 1, cv2.LINE_AA)
    legend = "green rings: template points  red: raw detection"
    if any(c[5] is not None for c in cells):
        legend += f"  yellow: {truth_name}"
    cv2.putText(img, legend, (4, 28), font, small, (0, 0, 0), 1, cv2.LINE_AA)
    for row, name in enumerate(("ours-offline", "gaussian3")):
        y = top + row * (CELL + label)
        cv2.putText(img, name, (4, y + label + CELL // 2), font, small, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for col, (n, pixels, ours, g3, raw, truth, l_ours, l_g3) in enumerate(cells):
            x = left + col * CELL
            text = f"f{n} {l_ours if row == 0 else l_g3}"
            cv2.putText(img, text, (x + 3, y + label - 3), font, small, (0, 0, 0), 1,
                        cv2.LINE_AA)
            img[y + label : y + label + CELL, x : x + CELL] = crop(
                pixels, ours if row == 0 else g3, raw, truth)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def _finite(value: object) -> object:
    """``value`` with NaN and infinities as ``None`` (strict JSON)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# -- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_alignment",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", type=Path, help="more real clips to measure")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the ground-truth clips (default: a temporary one)")
    parser.add_argument("--frames", type=int, default=150, help="frames read per real clip")
    parser.add_argument("--gt-frames", type=int, default=120, help="frames per ground-truth clip")
    parser.add_argument("--only", default="real,gt", help="comma-separated sections: real, gt")
    parser.add_argument("--detect-every", default="",
                        help="comma-separated N: also run offline and causal with the detector "
                        "on every Nth frame, registration in between (ours-every<N>, "
                        "ours-causal-every<N>)")
    parser.add_argument("--causal-smooth", default="",
                        help="comma-separated strengths: also run the causal smoother at each "
                        "(ours-causal-sS)")
    parser.add_argument("--tuning", action="append", default=[], metavar="[causal:]K=V[,K=V]",
                        help="also run the offline smoother (with 'causal:', the causal one) "
                        "with these SmootherTuning fields (repeatable), e.g. "
                        "accel_rel=0.008,post_sigma=4.5")
    parser.add_argument("--causal-frontier", action="store_true",
                        help="also find, per real clip, the steadiest One Euro setting whose "
                        "drift p95 stays within each causal bar (baseline + 4 px)")
    parser.add_argument("--tune-one-euro", action="store_true",
                        help="only run the grid search that chose the One Euro settings")
    args = parser.parse_args(argv)
    if not YUNET.exists():
        raise SystemExit(f"{YUNET} not found (set VIDRESTORE_SHARED)")
    if args.tune_one_euro:
        tune_one_euro(YUNET, args.frames)
        return
    strengths = [float(v) for v in args.causal_smooth.split(",") if v.strip()]
    every = [int(v) for v in args.detect_every.split(",") if v.strip()]
    settings = with_variants(strengths, args.tuning, every)
    start = time.perf_counter()
    sections = {s.strip() for s in args.only.split(",")}
    report: dict = {"one_euro": ONE_EURO, "min_track": MIN_TRACK, "drift_limit": DRIFT_LIMIT,
                    "real": {}, "groundtruth": {}}
    if "real" in sections:
        clips = sorted(p for p in MEDIA.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        for clip in [*clips, *args.clips]:
            report["real"][clip.name] = bench_real(clip, args.frames, YUNET, settings,
                                                   args.causal_frontier)
    if "gt" in sections:
        with tempfile.TemporaryDirectory(prefix="vidrestore-gt-") as tmp:
            out_dir = args.out or Path(tmp)
            for spec in GT_CLIPS:
                spec = MotionSpec(**{**asdict(spec), "frames": args.gt_frames})
                report["groundtruth"][spec.name] = bench_groundtruth(spec, out_dir, YUNET,
                                                                     settings)
    report["seconds"] = time.perf_counter() - start
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "alignment.json").write_text(json.dumps(_finite(report), indent=1))
    print(f"{report['seconds']:.0f} s; figures in {RESULTS / 'alignment.json'}")


if __name__ == "__main__":
    main()
