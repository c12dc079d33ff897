"""Measures of landmark steadiness, accuracy and track identity, for tests and benchmarks.

Landmark measures are expressed in aligned-face pixels (the 512x512 crop the restorer sees), so
they mean the same for a small and a large face: a frame-pixel error is multiplied by that
frame's frame-to-face scale.

Without ground truth (real footage), the raw detections are the reference: ``jitter_reduction``
says how much steadier an estimate is than they are, ``drift`` how far it is from their
low-pass and ``detector_offset`` how far it lasts away from them. With ground truth,
``path_error`` and ``lag``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import linear_sum_assignment

from .align import affine_scale, similarity_transform
from .records import box_iou


def aligned_scales(landmarks: np.ndarray) -> np.ndarray:
    """Frame-to-aligned-face scale of each frame of a (T, 5, 2) landmark track."""
    return np.array([affine_scale(similarity_transform(p)) for p in np.asarray(landmarks)])


def jitter(
    landmarks: np.ndarray, scales: np.ndarray | None = None, valid: np.ndarray | None = None
) -> float:
    """RMS second difference of a (T, 5, 2) landmark track, in aligned-face pixels.

    The second difference ``p[t+1] - 2 p[t] + p[t-1]`` is zero for steady motion and large for
    frame-to-frame shake. ``scales`` (per frame) default to the track's own aligned scales; pass
    the same scales to compare two tracks of one face fairly. ``valid`` (per frame, bool) keeps
    only the second differences whose three frames are all valid.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    if len(p) < 3:
        raise ValueError(f"jitter needs at least 3 frames, got {len(p)}")
    s = aligned_scales(p) if scales is None else np.asarray(scales, dtype=np.float64)
    d2 = p[2:] - 2 * p[1:-1] + p[:-2]
    norms = np.linalg.norm(d2, axis=2) * s[1:-1, None]
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        keep = v[2:] & v[1:-1] & v[:-2]
        if not keep.any():
            raise ValueError("jitter needs three consecutive valid frames, found none")
        norms = norms[keep]
    return float(np.sqrt(np.mean(norms**2)))


def _detected(raw: np.ndarray) -> np.ndarray:
    """Per frame: whether all 5 points of a (T, 5, 2) track are finite."""
    return np.asarray(np.isfinite(np.asarray(raw, dtype=np.float64)).all(axis=(1, 2)))


def fill_gaps(raw: np.ndarray) -> np.ndarray:
    """A (T, 5, 2) track whose missing (NaN) frames are linearly interpolated in time (held
    constant before the first and after the last detected frame)."""
    p = np.array(raw, dtype=np.float64)
    ok = _detected(p)
    if not ok.any():
        raise ValueError("the track has no detected frame")
    t = np.arange(len(p))
    flat = p.reshape(len(p), -1)
    for k in range(flat.shape[1]):
        flat[~ok, k] = np.interp(t[~ok], t[ok], flat[ok, k])
    return flat.reshape(p.shape)


def gaussian_baseline(raw: np.ndarray, sigma: float) -> np.ndarray:
    """Centred Gaussian smoothing over time (``sigma`` frames) of a (T, 5, 2) landmark track.

    Missing frames (NaN) are filled by linear interpolation first; the ends repeat the edge
    frame (``mode="nearest"``). An offline reference: it sees the future.
    """
    p = fill_gaps(raw)
    if sigma <= 0:
        return p
    smooth: np.ndarray = gaussian_filter1d(p, sigma, axis=0, mode="nearest")
    return smooth


def drift(estimate: np.ndarray, raw: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Per-frame mean distance (aligned-face px) over the 5 points of ``estimate`` from the
    detections' low-pass (:func:`gaussian_baseline` of ``raw`` with ``sigma``).

    The low-pass follows the face wherever the detector does, so a large value means the
    landmarks have left the face the detector sees. Frame-to-face scales are those of the
    low-pass. NaN on frames where ``raw`` (or ``estimate``) is missing.
    """
    est = np.asarray(estimate, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    if est.shape != raw.shape or est.ndim != 3:
        raise ValueError(f"estimate {est.shape} and raw {raw.shape} must both be (T, 5, 2)")
    ref = gaussian_baseline(raw, sigma)
    scales = aligned_scales(ref)
    d: np.ndarray = np.linalg.norm(est - ref, axis=2).mean(axis=1) * scales
    d[~(_detected(raw) & _detected(est))] = np.nan
    return d


def detector_offset(estimate: np.ndarray, raw: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Per-frame mean distance (aligned-face px) over the 5 points of the low-passed offset
    between ``estimate`` and the detections: Gaussian (``sigma`` frames) of
    ``estimate - raw``, missing detections interpolated.

    Unlike :func:`drift`, an estimate that follows fast true motion together with the detector
    is not penalised: only a lasting disagreement with the detections counts (landmarks
    carried away from the face, or lagging behind it). NaN where ``raw`` or ``estimate`` is
    missing; scales of the detections' low-pass.
    """
    est = np.asarray(estimate, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    if est.shape != raw.shape or est.ndim != 3:
        raise ValueError(f"estimate {est.shape} and raw {raw.shape} must both be (T, 5, 2)")
    off = gaussian_baseline(fill_gaps(est) - fill_gaps(raw), sigma)
    d: np.ndarray = np.linalg.norm(off, axis=2).mean(axis=1) * aligned_scales(
        gaussian_baseline(raw, sigma))
    d[~(_detected(raw) & _detected(est))] = np.nan
    return d


@dataclass(frozen=True)
class DriftSummary:
    """Median and 95th percentile of per-frame drift (aligned px), the share (0-1) of frames
    beyond ``limit`` px, over ``frames`` measured frames."""

    p50: float
    p95: float
    beyond: float
    limit: float
    frames: int


def drift_summary(per_frame: np.ndarray, limit: float = 20.0) -> DriftSummary:
    """Summary of a :func:`drift` (or :func:`detector_offset`) array; NaN frames ignored."""
    d = np.asarray(per_frame, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        raise ValueError("no measured frame")
    return DriftSummary(float(np.percentile(d, 50)), float(np.percentile(d, 95)),
                        float(np.mean(d > limit)), float(limit), len(d))


def jitter_reduction(estimate: np.ndarray, raw: np.ndarray, sigma: float = 2.0,
                     keep: np.ndarray | None = None) -> float:
    """How many times steadier ``estimate`` is than the raw detections: ``jitter(raw) /
    jitter(estimate)``, both with the frame-to-face scales of the detections' low-pass
    (``sigma``) and over the second differences whose three frames have a detection.

    ``keep`` (per frame, bool) measures on those frames alone, taken as consecutive: pass the
    frames that are not held (:class:`~vidrestore.faces.cuts.HeldFrames`), so that a video
    whose pictures repeat is measured on its own pictures; there, second differences across a
    repeat measure the jumps of the frame-rate conversion, not shake."""
    est = np.asarray(estimate, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    if est.shape != raw.shape or est.ndim != 3:
        raise ValueError(f"estimate {est.shape} and raw {raw.shape} must both be (T, 5, 2)")
    if keep is not None:
        est, raw = est[np.asarray(keep, bool)], raw[np.asarray(keep, bool)]
    scales = aligned_scales(gaussian_baseline(raw, sigma))
    valid = _detected(raw) & _detected(est)
    j_est = jitter(np.nan_to_num(est), scales, valid)
    j_raw = jitter(np.nan_to_num(raw), scales, valid)
    return j_raw / j_est if j_est > 0 else float("inf")


def path_errors(estimate: np.ndarray, truth: np.ndarray, remove_offset: bool = True) -> np.ndarray:
    """Per-frame, per-point error vectors (T, 5, 2) in aligned-face pixels of the true face.

    Each error is turned into the true face's aligned frame (rotation and scale of the true
    similarity). With ``remove_offset`` the mean error of each point over the clip - a
    detector's constant bias on this face - is subtracted.
    """
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(truth, dtype=np.float64)
    if est.shape != ref.shape or est.ndim != 3:
        raise ValueError(f"estimate {est.shape} and truth {ref.shape} must both be (T, 5, 2)")
    linear = np.stack([similarity_transform(p)[:, :2] for p in ref])
    err: np.ndarray = np.einsum("tij,tpj->tpi", linear, est - ref)
    if remove_offset:
        err -= err.mean(axis=0, keepdims=True)
    return err


def path_error(estimate: np.ndarray, truth: np.ndarray, remove_offset: bool = True) -> float:
    """RMS distance (aligned-face px) between estimated and true landmarks; see path_errors."""
    err = path_errors(estimate, truth, remove_offset)
    return float(np.sqrt(np.mean(np.sum(err**2, axis=2))))


def lag(estimate: np.ndarray, truth: np.ndarray, max_shift: int = 8) -> float:
    """Delay in frames of ``estimate`` behind ``truth`` (negative: ahead), sub-frame.

    The shift ``k`` minimising the error of ``estimate[t + k]`` against ``truth[t]``, refined by
    a parabola through the three best integer shifts.
    """
    est, ref = np.asarray(estimate), np.asarray(truth)
    n = len(ref)
    if n <= 2 * max_shift + 2:
        raise ValueError(f"lag needs more than {2 * max_shift + 2} frames, got {n}")
    shifts = np.arange(-max_shift, max_shift + 1)
    costs = []
    for k in range(-max_shift, max_shift + 1):
        lo, hi = max(0, -k), min(n, n - k)
        costs.append(path_error(est[lo + k : hi + k], ref[lo:hi], remove_offset=True) ** 2)
    c = np.array(costs)
    i = int(np.argmin(c))
    if 0 < i < len(c) - 1:
        denom = c[i - 1] - 2 * c[i] + c[i + 1]
        frac = 0.5 * (c[i - 1] - c[i + 1]) / denom if denom > 0 else 0.0
        return float(shifts[i] + frac)
    return float(shifts[i])


@dataclass(frozen=True)
class IdentityScore:
    """How well predicted tracks follow true faces (CLEAR-MOT counting).

    ``switches``: a true face matched to a different track than on its previous match.
    ``fragmentations``: a true face's matched run interrupted and resumed.
    ``misses``/``false_positives``: unmatched true faces / predictions, summed over frames.
    """

    matches: int
    misses: int
    false_positives: int
    switches: int
    fragmentations: int


def identity_score(
    predicted: Sequence[Sequence[tuple[int, np.ndarray]]],
    truth: Sequence[Sequence[tuple[int, np.ndarray]]],
    min_iou: float = 0.4,
) -> IdentityScore:
    """Compare per-frame ``(track_id, box)`` predictions with ``(true_id, box)`` ground truth."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted frames against {len(truth)} true frames")
    last_id: dict[int, int] = {}
    tracked_before: dict[int, bool] = {}
    matches = misses = false_pos = switches = frags = 0
    for preds, trues in zip(predicted, truth, strict=True):
        pairs: list[tuple[int, int]] = []
        if preds and trues:
            iou = box_iou(np.stack([b for _, b in trues]), np.stack([b for _, b in preds]))
            rows, cols = linear_sum_assignment(-iou)
            pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]
        matched_true = {r for r, _ in pairs}
        matches += len(pairs)
        misses += len(trues) - len(pairs)
        false_pos += len(preds) - len(pairs)
        for r, c in pairs:
            gt, tid = trues[r][0], preds[c][0]
            if gt in last_id and last_id[gt] != tid:
                switches += 1
            if gt in tracked_before and not tracked_before[gt]:
                frags += 1
            last_id[gt] = tid
            tracked_before[gt] = True
        for r, (gt, _) in enumerate(trues):
            if r not in matched_true and gt in tracked_before:
                tracked_before[gt] = False
    return IdentityScore(matches, misses, false_pos, switches, frags)
