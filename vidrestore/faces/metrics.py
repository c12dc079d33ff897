"""Measures of landmark steadiness, accuracy and track identity, for tests and benchmarks.

Landmark measures are expressed in aligned-face pixels (the 512x512 crop the restorer sees), so
they mean the same for a small and a large face: a frame-pixel error is multiplied by that
frame's frame-to-face scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .align import affine_scale, similarity_transform
from .records import box_iou


def aligned_scales(landmarks: np.ndarray) -> np.ndarray:
    """Frame-to-aligned-face scale of each frame of a (T, 5, 2) landmark track."""
    return np.array([affine_scale(similarity_transform(p)) for p in np.asarray(landmarks)])


def jitter(landmarks: np.ndarray, scales: np.ndarray | None = None) -> float:
    """RMS second difference of a (T, 5, 2) landmark track, in aligned-face pixels.

    The second difference ``p[t+1] - 2 p[t] + p[t-1]`` is zero for steady motion and large for
    frame-to-frame shake. ``scales`` (per frame) default to the track's own aligned scales; pass
    the same scales to compare two tracks of one face fairly.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    if len(p) < 3:
        raise ValueError(f"jitter needs at least 3 frames, got {len(p)}")
    s = aligned_scales(p) if scales is None else np.asarray(scales, dtype=np.float64)
    d2 = p[2:] - 2 * p[1:-1] + p[:-2]
    norms = np.linalg.norm(d2, axis=2) * s[1:-1, None]
    return float(np.sqrt(np.mean(norms**2)))


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
    err = np.einsum("tij,tpj->tpi", linear, est - ref)
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
    for k in shifts:
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
