"""Smoothed landmarks on real footage: steadier than the detections, yet with them.

Judged as ``benchmarks/bench_alignment.py`` judges them (see its docstring), on shorter runs:

* real clip - the first 90 frames (3.6 s) of ``shared/media/lp_s13.mp4`` (720x1080, one small
  face). Without ground truth the raw detections are the reference; the centred Gaussian of
  sigma 3 over them (``gaussian3``) is the bar.
* ground truth - 72 frames of ``vr_face_4.mp4`` rolled, zoomed and shaken by a known similarity,
  shrunk to a 100-px face and degraded (``benchmarks/groundtruth.py``).

Needs ``../shared`` (media and the YuNet model); skipped when it is absent.
"""

from __future__ import annotations

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
    follow,
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


def _real_figures(estimate: np.ndarray, raw: np.ndarray) -> dict[str, float]:
    s = drift_summary(drift(estimate, raw))
    return {"jitter_reduction": jitter_reduction(estimate, raw), "drift_p95": s.p95,
            "beyond": s.beyond, "offset_p95": drift_summary(detector_offset(estimate, raw)).p95}


def _table(figures: dict[str, dict[str, float]]) -> str:
    return "\n".join(f"  {m:<13} " + "  ".join(f"{k} {v:.4g}" for k, v in f.items())
                     for m, f in figures.items())


@pytest.fixture(scope="module")
def real_figures(media_dir: Path, yunet_path: Path) -> dict[str, dict[str, float]]:
    frames, rate = read_clip(media_dir / "lp_s13.mp4", REAL_FRAMES)
    offline = run_stream(frames, FaceOptions(), yunet_path)
    causal = run_stream(frames, FaceOptions(causal=True), yunet_path)
    track = tracks_of(offline)[0]
    assert len(track.smooth) >= 0.9 * REAL_FRAMES, "the face was not followed through the clip"
    reference = np.where(np.isfinite(track.raw), track.raw, track.smooth)
    estimates = {"raw": track.raw, "gaussian3": gaussian_baseline(track.raw, 3),
                 "one-euro": one_euro(track.raw, float(rate)), "ours-offline": track.smooth,
                 "ours-causal": follow(reference, track.frames, causal)[0]}
    return {m: _real_figures(e, track.raw) for m, e in estimates.items()}


def test_real_clip_offline_is_as_steady_as_gaussian3_and_never_wanders_off(
        real_figures: dict[str, dict[str, float]]) -> None:
    """The issue's window-mode bar on a real clip: as steady as gaussian3 (within 10 %), drift
    p95 within 2 px of its and no more frames beyond 20 px than it has (+0.5 %). The smoother
    before the drift guard failed the last: 5.6 % of these frames beyond 20 px against
    gaussian3's 4.4 % (and 4.2x steadier against 10.9x); now 10.9x and 2.2 %."""
    ours, bar = real_figures["ours-offline"], real_figures["gaussian3"]
    table = _table(real_figures)
    assert ours["jitter_reduction"] >= 0.9 * bar["jitter_reduction"], table
    assert ours["drift_p95"] <= bar["drift_p95"] + 2.0, table
    assert ours["beyond"] <= bar["beyond"] + 0.005, table


def test_real_clip_causal_is_steadier_than_the_detections(
        real_figures: dict[str, dict[str, float]]) -> None:
    """Causal mode (no look-ahead) as a floor: about 2x steadier today; the issue's 4x is not
    reached by a forward filter that keeps its lag under a frame on the ground-truth clips."""
    assert real_figures["ours-causal"]["jitter_reduction"] >= 1.5, _table(real_figures)


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
    detections by a clear margin (0.67-0.68x today), with under a frame of lag either way
    (-0.65 to -0.78 on this clip's fast roll since the registration's rotation is weighed as
    measured, -0.47 before; the detections themselves -0.14); causal closer than the
    detections, under a frame late."""
    table = _table(gt_figures)
    ours, causal, raw = (gt_figures[m] for m in ("ours-offline", "ours-causal", "raw"))
    assert ours["path_error"] <= gt_figures["gaussian3"]["path_error"], table
    assert ours["path_error"] <= 0.76 * raw["path_error"], table
    assert abs(ours["lag"]) < 1.0, table
    assert causal["path_error"] <= 0.85 * raw["path_error"], table
    assert 0.0 <= causal["lag"] <= 1.0, table
