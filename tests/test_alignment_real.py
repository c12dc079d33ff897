"""Smoothed landmarks on real footage: steadier than the detections, yet with them.

Judged as ``benchmarks/bench_alignment.py`` judges them (see its docstring), on shorter runs:

* real clip - the first 90 frames (3.6 s) of ``shared/media/lp_s13.mp4`` (720x1080, one small
  dancing face; 15 pictures a second shown at 25 fps, so about 2 frames in 5 repeat the one
  before). Without ground truth the reference is the detector's consensus: the median of 16
  detections of each frame with the detector's grid shifted 16 ways, which keeps the face's
  true motion on every frame and averages the grid's noise away. The centred Gaussian of
  sigma 3 over the detections (``gaussian3``) is the baseline.
* ground truth - 72 frames of ``vr_face_4.mp4`` rolled, zoomed and shaken by a known similarity,
  shrunk to a 100-px face and degraded (``benchmarks/groundtruth.py``).

Needs ``../shared`` (media and the YuNet model); skipped when it is absent.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from vidrestore.faces import FaceOptions
from vidrestore.faces.metrics import (
    detector_offset,
    drift,
    drift_summary,
    fill_gaps,
    gaussian_baseline,
    jitter_reduction,
    lag,
    path_error,
)

# The ground-truth builder and the measuring helpers are benchmark code (benchmarks/, beside
# vidrestore/, not shipped with the library). Tests run with tests/ on sys.path but not the
# repository root, so the root is put in front here: ``benchmarks`` then resolves to this
# checkout's folder (no installed package has that name).
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_alignment import (  # noqa: E402
    consensus,
    follow,
    held_frames,
    one_euro,
    read_clip,
    run_stream,
    tracks_of,
)
from benchmarks.groundtruth import MotionSpec, build_clip  # noqa: E402

REAL_FRAMES = 90
GT_SPEC = MotionSpec("gt_test", frames=72, canvas=(480, 360), face_px=100, roll_deg=15,
                     roll_period=60, zoom=0.1, zoom_period=72, shake_px=1.0, blur=0.8, noise=3,
                     crf=28, seed=11)


def _real_figures(estimate: np.ndarray, raw: np.ndarray, agreed: np.ndarray,
                  new: np.ndarray) -> dict[str, float]:
    s = drift_summary(drift(estimate, raw))
    both = np.isfinite(estimate).all(axis=(1, 2)) & np.isfinite(agreed).all(axis=(1, 2))
    return {"consensus_error": path_error(estimate[both], agreed[both], remove_offset=False),
            "jitter_reduction": jitter_reduction(estimate, raw, keep=new), "drift_p95": s.p95,
            "offset_p95": drift_summary(detector_offset(estimate, raw)).p95}


def _table(figures: dict[str, dict[str, float]]) -> str:
    return "\n".join(f"  {m:<13} " + "  ".join(f"{k} {v:.4g}" for k, v in f.items())
                     for m, f in figures.items())


@pytest.fixture(scope="module")
def real_clip(media_dir: Path, yunet_path: Path) -> dict:
    frames, rate = read_clip(media_dir / "lp_s13.mp4", REAL_FRAMES)
    offline = run_stream(frames, FaceOptions(), yunet_path)
    causal = run_stream(frames, FaceOptions(causal=True), yunet_path)
    track = tracks_of(offline)[0]
    assert len(track.smooth) >= 0.9 * REAL_FRAMES, "the face was not followed through the clip"
    reference = np.where(np.isfinite(track.raw), track.raw, track.smooth)
    estimates = {"raw": track.raw, "gaussian3": gaussian_baseline(track.raw, 3),
                 "one-euro": one_euro(track.raw, float(rate)), "ours-offline": track.smooth,
                 "ours-causal": follow(reference, track.frames, causal)[0]}
    agreed, _ = consensus(frames, track, yunet_path)
    held = held_frames(frames)[track.frames.start:track.frames.stop]
    figures = {m: _real_figures(e, track.raw, agreed, ~held) for m, e in estimates.items()}
    return {"frames": frames, "track": track, "held": held, "figures": figures,
            "offline": offline}


def test_real_clip_offline_stays_on_the_face_the_detector_sees(real_clip: dict) -> None:
    """Offline landmarks as close to the detector's consensus as its single detections are
    (the face bobs in jumps a temporal average cannot follow), and nowhere near as far off as
    gaussian3 (3.3x the detections' error), which the smoother with the post Gaussian
    (sigma 4.75) matched: 3.3x too, up to 60 aligned px off the face. With the steadiness
    measured on the clip's own pictures (held frames out), the smoother is no less steady
    than the detections."""
    figures = real_clip["figures"]
    ours, raw, g3 = (figures[m] for m in ("ours-offline", "raw", "gaussian3"))
    table = _table(figures)
    assert ours["consensus_error"] <= 1.2 * raw["consensus_error"], table
    assert ours["consensus_error"] <= 0.5 * g3["consensus_error"], table
    assert ours["offset_p95"] <= 12.0, table
    assert ours["jitter_reduction"] >= 1.0, table


def test_real_clip_causal_stays_on_the_face_the_detector_sees(real_clip: dict) -> None:
    """Causal mode (no look-ahead) under the same rule: as close to the consensus as the
    detections, closer than the One Euro filter."""
    figures = real_clip["figures"]
    table = _table(figures)
    causal = figures["ours-causal"]
    assert causal["consensus_error"] <= 1.2 * figures["raw"]["consensus_error"], table
    assert causal["consensus_error"] <= figures["one-euro"]["consensus_error"], table
    assert causal["jitter_reduction"] >= 1.0, table


def test_repeated_pictures_are_held_with_their_faces(real_clip: dict) -> None:
    """The clip's repeated pictures (a grey difference from the frame before under 0.2
    levels on average, against 0.5 or more for every picture that moved) are the frames
    found held once two new pictures have shown how much this clip's pictures differ, and on
    each of them the offline landmarks are those of the frame before: a still picture gets a
    still face."""
    frames, track, held = real_clip["frames"], real_clip["track"], real_clip["held"]
    grey = [f.analysis.mean(axis=2) for f in frames]
    repeats = np.array([False] + [float(np.abs(a - b).mean()) < 0.2
                                  for a, b in itertools.pairwise(grey)])
    known = slice(5, None)  # after the first two new pictures
    assert np.array_equal(held[known], repeats[track.frames.start:track.frames.stop][known])
    assert 25 <= held.sum() <= 45, f"{held.sum()} held frames of {len(held)}"
    reported = [f for ff in real_clip["offline"] for f in ff.faces if f.track_id == track.track_id]
    assert [f.held for f in reported] == list(held)
    smooth = track.smooth
    moves = np.abs(smooth[1:] - smooth[:-1]).max(axis=(1, 2))
    assert moves[held[1:]].max() < 0.01, moves[held[1:]]
    assert np.median(moves[~held[1:]]) > 1.0, "the face does move between new pictures"


@pytest.fixture(scope="module")
def gt_figures(media_dir: Path, yunet_path: Path,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    path, truth = build_clip(media_dir / "vr_face_4.mp4", GT_SPEC,
                             tmp_path_factory.mktemp("gt"), yunet_path)
    frames, _ = read_clip(path)
    span = range(len(frames))
    offline, raw = follow(truth, span, run_stream(frames, FaceOptions(), yunet_path))
    causal, _ = follow(truth, span, run_stream(frames, FaceOptions(causal=True), yunet_path))
    estimates = {"raw": raw, "gaussian3": gaussian_baseline(raw, 3), "ours-offline": offline,
                 "ours-causal": causal}
    ok = np.all([np.isfinite(e).all(axis=(1, 2)) for e in estimates.values()], axis=0)
    assert ok.sum() >= 0.9 * len(frames), f"the face was measured on {ok.sum()} frames only"
    return {m: {"path_error": path_error(e[ok], truth[ok]), "lag": lag(fill_gaps(e), truth)}
            for m, e in estimates.items()}


def test_groundtruth_offline_follows_the_face(gt_figures: dict[str, dict[str, float]]) -> None:
    """On a real face moved by a known motion: closer to the truth than gaussian3 and than the
    detections by a clear margin (0.64x today, 0.67-0.68x with the post Gaussian), with under
    a frame of lag either way (-0.44 on this clip's fast roll: the registration's rotation
    leads the detections' by a little; the detections themselves -0.16); causal closer than
    the detections (0.77x), under a frame from the truth either way (-0.19)."""
    table = _table(gt_figures)
    ours, causal, raw = (gt_figures[m] for m in ("ours-offline", "ours-causal", "raw"))
    assert ours["path_error"] <= gt_figures["gaussian3"]["path_error"], table
    assert ours["path_error"] <= 0.72 * raw["path_error"], table
    assert abs(ours["lag"]) < 1.0, table
    assert causal["path_error"] <= 0.85 * raw["path_error"], table
    assert abs(causal["lag"]) <= 1.0, table
