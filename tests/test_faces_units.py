"""Face-stage pieces that need no detector: alignment, smoothing, metrics, cuts, report, drawing."""

from __future__ import annotations

import gc
import json
import math
import signal
from fractions import Fraction

import cv2
import numpy as np
import pytest

from vidrestore.errors import OutputError, SourceError
from vidrestore.faces import TEMPLATE_512, FaceOptions, similarity_transform, warp_face
from vidrestore.faces.align import affine_scale, fit_similarity, transform_points
from vidrestore.faces.cuts import CutDetector, HeldFrames
from vidrestore.faces.draw import draw_faces, track_colour
from vidrestore.faces.metrics import identity_score, jitter, lag, path_error
from vidrestore.faces.records import Detection, FrameFaces, TrackedFace, box_iou
from vidrestore.faces.register import Registration
from vidrestore.faces.report import (
    ReportCollector,
    TrackReport,
    dumps,
    read_tracks_report,
    tracks_report,
)
from vidrestore.faces.smooth import LandmarkSmoother, SmootherTuning, compose, pose_and_shape
from vidrestore.io.frame import Frame
from vidrestore.testing.scenes import background

# -- alignment --------------------------------------------------------------------------------


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx],
                     [scale * math.sin(a), scale * math.cos(a), ty]])


def test_template_is_the_published_one_and_read_only() -> None:
    assert TEMPLATE_512.shape == (5, 2) and TEMPLATE_512.dtype == np.float32
    assert TEMPLATE_512[0, 0] < TEMPLATE_512[1, 0] and TEMPLATE_512[3, 0] < TEMPLATE_512[4, 0]
    np.testing.assert_allclose(TEMPLATE_512[2], (256.63416, 314.01935))
    with pytest.raises(ValueError):
        TEMPLATE_512[0, 0] = 0


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1, 0, 0), (17, 0.37, 900.5, -40.25),
                                               (-45, 2.5, 12.0, 300.0), (170, 0.8, 5, 5)])
def test_similarity_transform_recovers_an_exact_similarity(angle, scale, tx, ty) -> None:
    to_frame = similarity(angle, scale, tx, ty)
    landmarks = transform_points(to_frame, TEMPLATE_512)
    affine = similarity_transform(landmarks)
    np.testing.assert_allclose(transform_points(affine, landmarks), TEMPLATE_512, atol=1e-4)
    assert affine_scale(affine) == pytest.approx(1 / scale, rel=1e-9)
    # agrees with OpenCV's own similarity estimate on exact data
    cv_affine, _ = cv2.estimateAffinePartial2D(landmarks, TEMPLATE_512, method=cv2.LMEDS)
    np.testing.assert_allclose(affine, cv_affine, atol=1e-3)


def test_least_squares_fit_is_the_best_similarity_for_noisy_points() -> None:
    rng = np.random.default_rng(0)
    landmarks = transform_points(similarity(8, 0.5, 300, 200), TEMPLATE_512)
    noisy = landmarks + rng.normal(0, 1.5, landmarks.shape)
    best = fit_similarity(noisy, TEMPLATE_512)
    cost = np.sum((transform_points(best, noisy) - TEMPLATE_512) ** 2)
    for _ in range(50):  # no nearby similarity does better
        a, s = rng.normal(0, 0.01), 1 + rng.normal(0, 0.01)
        m = similarity(math.degrees(a), s, *rng.normal(0, 0.5, 2))
        other = np.vstack([m, [0, 0, 1]]) @ np.vstack([best, [0, 0, 1]])
        assert np.sum((transform_points(other[:2], noisy) - TEMPLATE_512) ** 2) >= cost


@pytest.mark.parametrize("dtype,unit", [(np.uint8, 1), (np.uint16, 257)])
def test_warp_face_keeps_dtype_and_fills_the_published_grey(dtype, unit) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 200 * unit, (300, 400, 3)).astype(dtype)
    affine = np.array([[1.0, 0, -100], [0, 1.0, -50]])  # the face crop starts at (100, 50)
    face = warp_face(image, affine)
    assert face.shape == (512, 512, 3) and face.dtype == dtype
    np.testing.assert_array_equal(face[:250, :300], image[50:300, 100:400])
    assert tuple(face[400, 400]) == (132 * unit, 133 * unit, 135 * unit)
    with pytest.raises(ValueError, match="HxWx3"):
        warp_face(image[:, :, 0], affine)


# -- records ------------------------------------------------------------------------------------


def test_detection_moved_maps_pixel_centres_back_to_the_frame() -> None:
    det = Detection([10, 20, 30, 40], 0.9, [[12, 25]] * 5)
    back = det.moved(0.5, (100, 200))
    np.testing.assert_allclose(back.box, [120, 240, 160, 280])
    np.testing.assert_allclose(back.landmarks[0], [(12 + 0.5) / 0.5 - 0.5 + 100,
                                                    (25 + 0.5) / 0.5 - 0.5 + 200])
    with pytest.raises(ValueError, match="5"):
        Detection([0, 0, 1, 1], 0.5, np.zeros((4, 2)))


def test_box_iou() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10],
                                                         [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]])


# -- smoothing ----------------------------------------------------------------------------------


def test_pose_and_shape_round_trip() -> None:
    rng = np.random.default_rng(2)
    pts = transform_points(similarity(20, 0.4, 500, 300), TEMPLATE_512) + rng.normal(0, 2, (5, 2))
    pose, shape, scale = pose_and_shape(pts)
    np.testing.assert_allclose(compose(pose, shape), pts, atol=1e-4)
    assert scale == pytest.approx(0.4, rel=0.05)
    # the exact template shape has zero residual
    _, shape0, _ = pose_and_shape(transform_points(similarity(-5, 2, 1, 2), TEMPLATE_512))
    np.testing.assert_allclose(shape0, 0, atol=1e-9)


def trajectory(n: int, kind: str) -> np.ndarray:
    """True landmarks of a rigid face along a known path (frame pixels)."""
    out = []
    for t in range(n):
        if kind == "pan":  # still, then a fast pan that accelerates
            x = 300 + (0 if t < 40 else 0.15 * (t - 40) ** 2)
        else:  # smooth sway
            x = 300 + 40 * math.sin(2 * math.pi * t / 70)
        y = 200 + 15 * math.sin(2 * math.pi * t / 55)
        angle = 6 * math.sin(2 * math.pi * t / 90)
        out.append(transform_points(similarity(angle, 0.35, x - 90, y - 105), TEMPLATE_512))
    return np.array(out)


def smooth_offline(raw, scores, lookahead=12, **kw) -> np.ndarray:
    sm = LandmarkSmoother(0, **kw)
    out = []
    for t in range(len(raw)):
        sm.step(raw[t], None if scores is None else scores[t])
        if t >= lookahead:
            out.append(sm.smoothed(t - lookahead))
            sm.forget_before(t - lookahead + 1)
            # memory bounded by the look-ahead and the few past frames the estimate reads
            assert sm.last_frame - sm.first <= lookahead + sm.history
    out += [sm.smoothed(t) for t in range(max(0, len(raw) - lookahead), len(raw))]
    return np.array(out)


def test_an_interruption_while_smoothing_reaches_the_caller() -> None:
    """SIGTERM is raised in the main thread (and Ctrl-C is a KeyboardInterrupt): wherever it
    lands in the smoother's linear algebra it must reach the caller, never be swallowed into a
    NaN state that fails the run later on NaN boxes."""

    class Stop(BaseException):
        pass

    armed, delivered, caught = False, 0, 0

    def interrupt(signum: int, frame: object) -> None:
        nonlocal armed, delivered
        if armed:
            armed, delivered = False, delivered + 1
            raise Stop

    truth = trajectory(400, "sway")
    rng = np.random.default_rng(5)
    raw = truth + rng.normal(0, 1.0, truth.shape)
    # an interruption landing in a finaliser the collector runs (an earlier test's objects)
    # is dropped by Python itself, whatever the smoother does: no collection while armed
    gc.collect()
    gc.disable()
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.0013, 0.0013)
    try:
        for _ in range(60):
            sm = LandmarkSmoother(0)
            try:
                armed = True
                for t in range(len(raw)):
                    sm.step(raw[t], 0.9, Registration(truth[t], 0.95, t == 0))
                armed = False
            except Stop:
                caught += 1
            for t in range(sm.first, sm.last_frame + 1):  # what was stored is sound
                assert np.isfinite(sm.filtered(t)).all()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
        gc.enable()
    assert delivered >= 30
    assert caught == delivered


def test_the_smoothers_backward_pass_gives_filterpys_means() -> None:
    from filterpy.kalman import rts_smoother

    from vidrestore.faces.smooth import _F4, _rts_means, _transitions

    rng = np.random.default_rng(1)
    n = 40
    xs = rng.normal(size=(n, 4, 10))
    a, b = rng.normal(size=(n, 4, 4)), 0.3 * rng.normal(size=(n, 4, 4))
    ps = a @ a.transpose(0, 2, 1) + np.eye(4)
    qs = b @ b.transpose(0, 2, 1) + 0.01 * np.eye(4)
    expected = rts_smoother(xs, ps, np.broadcast_to(_F4, (n, 4, 4)), qs)[0]
    assert np.allclose(_rts_means(xs, ps, *_transitions(qs)), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["sway", "pan"])
def test_smoother_removes_noise_without_lag(kind) -> None:
    rng = np.random.default_rng(3)
    truth = trajectory(160, kind)
    raw = truth + rng.normal(0, 1.2, truth.shape)
    smoothed = smooth_offline(raw, None)
    assert path_error(smoothed, truth) < 0.45 * path_error(raw, truth)
    assert jitter(smoothed) < jitter(raw) / 8
    assert abs(lag(smoothed, truth)) < 0.3
    if kind == "pan":  # the fast accelerating part is held too (no lag, little error)
        tail = slice(100, 150)
        assert path_error(smoothed[tail], truth[tail]) < 0.6 * path_error(raw[tail], truth[tail])


def test_causal_filter_uses_only_the_past() -> None:
    rng = np.random.default_rng(4)
    truth = trajectory(80, "sway")
    raw = truth + rng.normal(0, 1.0, truth.shape)
    a, b = LandmarkSmoother(0), LandmarkSmoother(0)
    for t in range(80):
        a.step(raw[t], 0.9)
        b.step(raw[t] if t < 50 else raw[t] + 30, 0.9)  # a different future
    np.testing.assert_array_equal(a.filtered(49), b.filtered(49))
    assert not np.array_equal(a.smoothed(45), b.smoothed(45))
    assert path_error(np.array([a.filtered(t) for t in range(80)]), truth) < path_error(raw, truth)


def test_gaps_are_interpolated_and_strength_zero_is_raw() -> None:
    rng = np.random.default_rng(5)
    truth = trajectory(60, "sway")
    raw = truth + rng.normal(0, 0.8, truth.shape)
    sm = LandmarkSmoother(0)
    for t in range(60):
        sm.step(None if 30 <= t < 34 else raw[t], 0.9)
    gap = np.array([sm.smoothed(t) for t in range(30, 34)])
    assert path_error(gap, truth[30:34], remove_offset=False) < 3.0  # aligned px
    raw_only = LandmarkSmoother(0, strength=0)
    for t in range(5):
        raw_only.step(raw[t], 0.9)
    np.testing.assert_array_equal(raw_only.smoothed(2), raw[2].astype(np.float32))
    with pytest.raises(ValueError, match="first frame"):
        LandmarkSmoother(0).step(None)


def test_low_confidence_detections_are_trusted_less() -> None:
    rng = np.random.default_rng(6)
    truth = trajectory(150, "sway")
    bad = rng.random(150) < 0.3
    noise = np.where(bad[:, None, None], 6.0, 0.8)
    raw = truth + rng.normal(0, 1, truth.shape) * noise
    scores = np.where(bad, 0.6, 0.92)
    adaptive = smooth_offline(raw, scores)
    blind = smooth_offline(raw, scores, tuning=SmootherTuning(score_power=0))
    assert path_error(adaptive, truth) < 0.8 * path_error(blind, truth)


# -- metrics ------------------------------------------------------------------------------------


def test_real_footage_measures_on_known_signals() -> None:
    from vidrestore.faces.metrics import (
        detector_offset,
        drift,
        drift_summary,
        fill_gaps,
        gaussian_baseline,
        jitter_reduction,
    )

    line = np.array([TEMPLATE_512 + np.array((2.5 * t, 0)) for t in range(40)], dtype=np.float64)
    wobble = line + np.array([(-1) ** t for t in range(40)])[:, None, None] * (0.5, 0)
    # a Gaussian keeps steady motion (away from the ends) and removes the wobble
    smooth = gaussian_baseline(wobble, 3)
    np.testing.assert_allclose(smooth[10:30], line[10:30], atol=0.01)
    assert jitter_reduction(smooth, wobble) > 10  # what is left is at the clamped ends
    # a missing frame is bridged linearly and not measured
    holed = wobble.copy()
    holed[7] = np.nan
    np.testing.assert_allclose(fill_gaps(holed)[7], (wobble[6] + wobble[8]) / 2)
    d = drift(line, holed)
    assert np.isnan(d[7]) and np.nanmax(d[5:35]) < 0.25  # the line is the wobble's low-pass
    assert np.nanmax(d[14:30]) < 0.01  # (away from the bridged frame and the ends)
    # a constant shift of 4 px (scale 1) is drift and a lasting offset alike
    shifted = line + np.array((4.0, 0.0))
    assert drift_summary(detector_offset(shifted, line)).p50 == pytest.approx(4.0)
    s = drift_summary(drift(shifted, line), limit=3.0)
    assert s.p50 == pytest.approx(4.0) and s.frames == 40
    assert s.beyond == 0.975  # the low-pass bends back at the clamped ends: one frame under 3


def test_report_says_how_far_the_points_stay_from_the_detections(caplog) -> None:
    from vidrestore.faces.api import _warn_doubtful
    from vidrestore.faces.report import TrackEntry, TrackReport, dumps, face_entry

    rng = np.random.default_rng(7)
    truth = trajectory(60, "sway")
    raw = truth + rng.normal(0, 1.0, truth.shape)
    box = np.array([0.0, 0.0, 10.0, 10.0])

    def entry(smoothed: np.ndarray, track_id: int) -> TrackEntry:
        faces = [TrackedFace(track_id, i, box, 0.9, raw[i], smoothed[i], False)
                 for i in range(len(raw))]
        return TrackEntry(track_id, tuple(face_entry(f, None, None) for f in faces))

    # scale 0.35 frame px per template px: 12 frame px are 34 template px
    away_track = entry(truth + np.array((12.0, 0)), 2)
    report = TrackReport({}, (entry(smooth_offline(raw, None), 1), away_track))
    steady, away = (t.alignment() for t in report.tracks)
    assert steady["jitter_reduction"] > 8 and steady["offset_p95"] < 5 and not steady["doubtful"]
    assert away["doubtful"] and away["offset_p95"] == pytest.approx(12 / 0.35, rel=0.05)
    data = json.loads(dumps(report.to_dict()))
    assert [t["alignment"] for t in data["tracks"]] == [steady, away]
    assert TrackReport.from_dict(data).tracks[1].frames == report.tracks[1].frames
    with caplog.at_level("WARNING"):
        _warn_doubtful(report)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("track 2: alignment doubtful"), said


def test_metrics_on_known_signals() -> None:
    truth = trajectory(60, "sway")
    line = np.array([TEMPLATE_512 + np.array((2.5 * t, 0)) for t in range(20)])
    assert jitter(line) == pytest.approx(0.0, abs=1e-9)
    wobble = line + np.array([(-1) ** t for t in range(20)])[:, None, None] * (0.5, 0)
    assert jitter(wobble) == pytest.approx(2.0, rel=1e-6)  # |(+-0.5) * 4| at scale 1
    # a constant offset (in face coordinates) is the detector's bias, not an error
    offset = np.array((3.0, -2.0))
    assert path_error(line + offset, line) == pytest.approx(0.0, abs=1e-9)
    assert path_error(line + offset, line, remove_offset=False) == pytest.approx(
        math.hypot(3, 2))
    # fixed in the frame: turns with the face
    assert path_error(truth + np.array((3.0, 0)), truth) > 0.1
    late = np.concatenate([truth[:2], truth[:-2]])
    assert lag(late, truth) == pytest.approx(2.0, abs=0.1)


def test_identity_score_counts_switches_and_fragmentations() -> None:
    a, b = np.array([0, 0, 10, 10.0]), np.array([50, 0, 60, 10.0])
    truth = [[(1, a), (2, b)]] * 4
    good = [[(7, a), (8, b)]] * 4
    swapped = [[(7, a), (8, b)], [(7, a), (8, b)], [(8, a), (7, b)], [(8, a), (7, b)]]
    gap = [[(7, a), (8, b)], [(8, b)], [(7, a), (8, b)], [(7, a), (8, b)]]
    assert identity_score(good, truth).switches == 0
    assert identity_score(swapped, truth).switches == 2
    s = identity_score(gap, truth)
    assert (s.switches, s.fragmentations, s.misses, s.matches) == (0, 1, 1, 7)


# -- scene cuts ---------------------------------------------------------------------------------


def test_cut_detector_fires_on_a_new_shot_only() -> None:
    bg = background(400, 300, 1)
    other = background(400, 300, 7)
    cuts = CutDetector(FaceOptions().cut_threshold)
    shots = [np.roll(bg, 3 * i, axis=1) for i in range(10)] + [other] * 3
    fired = [cuts.update(f) for f in shots]
    assert fired == [False] * 10 + [True, False, False]
    deep = CutDetector(0.2)
    assert [deep.update(f.astype(np.uint16) * 257) for f in (bg, bg, other)] == [False, False, True]
    assert not any(CutDetector(1.0).update(f) for f in (bg, other, bg))


def test_held_frames_are_repeats_of_a_picture_not_small_or_slow_motion() -> None:
    rng = np.random.default_rng(8)
    bg = background(1280, 720, 2)

    def noisy(pic: np.ndarray) -> np.ndarray:  # an encoder's noise on a repeated picture
        return np.clip(pic.astype(np.int16) + rng.integers(-2, 3, pic.shape), 0, 255).astype(
            np.uint8)

    def face_at(x: int) -> np.ndarray:  # a 40-px "face" on a still background
        pic = bg.copy()
        pic[300:340, x:x + 40] = 255 - pic[300:340, x:x + 40]
        return pic

    # a pan shown at 25 fps from 15 pictures a second: pictures 2 and 4 of every 5 repeat
    pictures = [np.roll(bg, 8 * (t - (t % 5 in (2, 4))), axis=1) for t in range(15)]
    shown = [noisy(p) if t % 5 in (2, 4) else p for t, p in enumerate(pictures)]
    held = HeldFrames()
    flags = [held.update(p) for p in shown]
    assert flags[5:] == [t % 5 in (2, 4) for t in range(5, 15)]
    # once it knows the clip, a small face that moves is not a repeat, a repeat of it is
    assert [held.update(p) for p in (face_at(600), face_at(606), noisy(face_at(606)))] == [
        False, False, True]
    # a slow pan repeats nothing: every frame moves a little, none stands out as still
    slow = HeldFrames()
    assert not any(slow.update(np.roll(bg, k, axis=1)) for k in range(20))
    # a picture still for longer than HELD_LONGEST frames gets fresh measurements again
    still = HeldFrames(longest=3)
    moving = [np.roll(bg, 8 * k, axis=1) for k in range(3)]
    assert [still.update(p) for p in (*moving, *[moving[2]] * 5)] == [
        False, False, False, True, True, True, False, True]
    # a cut starts over, and deep pictures are measured alike
    assert held.update(shown[0], cut=True) is False and held.update(shown[0]) is False
    deep = HeldFrames()
    assert [deep.update(p.astype(np.uint16) * 257) for p in shown[:5]] == [
        False, False, False, False, True]


def test_a_held_frame_keeps_the_face_and_stops_the_clock() -> None:
    """Pictures shown twice (15 fps material at 25): the face of a repeated frame is the one
    before, and the motion model counts time in pictures shown, so a pan is followed through
    its jumps as closely as when every picture is new."""
    rng = np.random.default_rng(9)
    truth = trajectory(120, "pan")
    noise = rng.normal(0, 1.0, truth.shape)
    shown = [t - (t % 5 in (2, 4)) for t in range(120)]  # frames 2 and 4 of 5 repeat
    raw = truth[shown] + noise
    for causal in (False, True):
        sm = LandmarkSmoother(0)
        est = []
        for t in range(120):
            sm.step(raw[t], 0.9, held=shown[t] != t)
            if causal:
                est.append(sm.filtered(t))
            elif t >= 12:
                est.append(sm.smoothed(t - 12))
        if not causal:
            est += [sm.smoothed(t) for t in range(108, 120)]
        out = np.array(est)
        repeats = [t for t in range(1, 120) if shown[t] != t]
        assert all(np.array_equal(out[t], out[t - 1]) for t in repeats)
        tail = slice(60, 110)
        assert path_error(out[tail], truth[shown][tail]) < 0.8 * path_error(
            raw[tail], truth[shown][tail]), causal


# -- report and drawing --------------------------------------------------------------------------


def face(track_id: int, index: int, interpolated: bool = False) -> TrackedFace:
    pts = TEMPLATE_512 * 0.2 + (10 * index, 5)
    return TrackedFace(track_id, index, [0 + index, 10, 60 + index, 80],
                       None if interpolated else 0.91234, None if interpolated else pts + 0.5,
                       pts, interpolated)


def test_report_round_trip_and_schema(tmp_path) -> None:
    tb = Fraction(1, 90000)
    collector = ReportCollector.for_video(None, width=320, height=240)
    collector.start_pts = 3000
    for i in range(4):
        pixels = np.zeros((240, 320, 3), np.uint8)
        faces = [face(2, i), face(1, i, interpolated=i == 2)]
        collector.add(FrameFaces(Frame(i, 3000 + 3600 * i, tb, pixels), faces, cut=False))
    report = collector.report()
    assert report.ids == [1, 2]
    entry = report.track(1).frames[2]
    assert (entry.pts, entry.time, entry.score, entry.landmarks_raw) == (10200, 0.08, None, None)
    assert entry.interpolated and not report.track(1).frames[1].interpolated
    path = report.write(tmp_path / "tracks.json")
    data = json.loads(path.read_text())
    assert data["schema"] == 1 and data["video"] == {"width": 320, "height": 240}
    assert set(data["tracks"][0]["frames"][0]) == {
        "frame", "pts", "time", "box", "score", "landmarks_raw", "landmarks", "interpolated",
        "weight", "held"}
    assert read_tracks_report(path) == report
    # a report of an earlier version, without "held", reads as nothing held
    for t in data["tracks"]:
        for f in t["frames"]:
            del f["held"]
    (tmp_path / "earlier.json").write_text(json.dumps(data))
    assert read_tracks_report(tmp_path / "earlier.json") == report
    assert json.loads(dumps(report.to_dict())) == report.to_dict()
    with pytest.raises(OutputError, match="exists"):
        report.write(path, overwrite=False)
    (tmp_path / "v2.json").write_text(json.dumps({**data, "schema": 2}))
    with pytest.raises(SourceError, match="schema 2"):
        read_tracks_report(tmp_path / "v2.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SourceError, match="not JSON"):
        read_tracks_report(tmp_path / "bad.json")


def test_tracks_report_from_grouped_faces_uses_the_frame_rate() -> None:
    class Info:  # the fields of io.VideoInfo the report reads
        time_base, avg_rate, start_pts, width, height = Fraction(1, 1000), Fraction(25), 40, 8, 6

    data = tracks_report({3: [face(3, 1), face(3, 0)]}, info=Info())
    frames = data["tracks"][0]["frames"]
    assert [(f["frame"], f["pts"], f["time"]) for f in frames] == [(0, 40, 0.0), (1, 80, 0.04)]
    assert data["video"]["fps"] == 25.0 and data["video"]["time_base"] == "1/1000"
    exact = tracks_report({3: [face(3, 1)]}, info=Info(), pts={1: 77})
    assert exact["tracks"][0]["frames"][0]["pts"] == 77
    assert TrackReport.from_dict(data).ids == [3]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_draw_faces_draws_on_a_copy(dtype) -> None:
    pixels = np.zeros((240, 320, 3), dtype)
    drawn = draw_faces(pixels, [face(1, 3), face(2, 4, interpolated=True)])
    assert drawn.dtype == dtype and not pixels.any()
    unit = 257 if dtype == np.uint16 else 1
    colours = {tuple(int(c) for c in p) for p in drawn.reshape(-1, 3)}
    for tid in (1, 2):
        assert tuple(c * unit for c in track_colour(tid)) in colours
    assert draw_faces(pixels, []).sum() == 0


# -- restoration weight ------------------------------------------------------------------------


def _detection(points: np.ndarray, score: float = 0.92, height: float | None = None) -> Detection:
    x0, y0 = points.min(axis=0) - 20
    x1, y1 = points.max(axis=0) + 20
    if height is not None:
        y1 = y0 + height
    return Detection([x0, y0, x1, y1], score, points)


def test_profiles_and_failed_landmarks_are_not_frontal() -> None:
    from vidrestore.faces.track import frontality

    frontal = TEMPLATE_512.astype(np.float64) * 0.4 + 100
    assert frontality(_detection(frontal)) == 1.0
    turned = frontal.copy()
    turned[2, 0] = turned[1, 0] + 5  # the nose beyond the right eye: a strong yaw
    assert frontality(_detection(turned)) == 0.0
    collapsed = frontal.copy()
    collapsed[0, 0] = collapsed[1, 0] - 8  # eyes almost on top of each other
    assert frontality(_detection(collapsed)) == 0.0
    eyes = float(frontal[1, 0] - frontal[0, 0])
    assert frontality(_detection(frontal, height=6 * eyes)) == 0.0  # box far too tall


def test_weight_fades_and_a_track_must_earn_restoration() -> None:
    from vidrestore.faces.track import QualityTuning, TrackQuality

    frontal = TEMPLATE_512.astype(np.float64) * 0.4 + 100
    turned = frontal.copy()
    turned[2, 0] = turned[1, 0] + 5
    q = TrackQuality(QualityTuning(fade_frames=4))
    for n in range(12):
        q.observe(n, _detection(turned if 4 <= n < 8 else frontal))
    weights = [q.weight(n) for n in range(12)]
    assert weights[:4] == [1.0] * 4  # restored from its first frame
    assert weights[4:8] == [0.75, 0.5, 0.25, 0.0]  # fades out, no pop
    assert weights[8:] == [0.25, 0.5, 0.75, 1.0]
    assert q.reason is None
    weak = TrackQuality()
    for n in range(5):
        weak.observe(n, _detection(frontal, score=0.74))
    assert [weak.weight(n) for n in range(5)] == [0.0] * 5
    assert "scored 0.80" in (weak.reason or "")


def test_report_says_why_a_track_is_left_alone(tmp_path) -> None:
    pts = TEMPLATE_512 * 0.2 + (10, 5)
    left = [TrackedFace(3, i, [0, 0, 60, 80], 0.72, pts + 0.5, pts, False, weight=0.0)
            for i in range(4)]
    report = TrackReport.from_dict(tracks_report({3: left, 1: [face(1, i) for i in range(4)]}))
    assert report.track(1).reason is None
    assert "scored" in report.track(3).reason
    data = json.loads(report.write(tmp_path / "tracks.json").read_text())
    assert [t["reason"] is None for t in data["tracks"]] == [True, False]
