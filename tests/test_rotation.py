"""Phone videos stored sideways: faces are found, tracked and restored in the displayed picture.

Each rotated clip holds the pixels of one upright clip (two real faces panning), physically
turned and tagged with the display matrix that turns them back, as a phone writes portrait
video; ffmpeg's own player logic (the ``ffmpeg`` program, which applies the matrix) shows it
upright. Everything is lossless (FFV1, 4:4:4), so a rotated clip decodes to exactly the turned
pixels and the restored outputs can be compared tightly with the upright clip's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from iomedia import ffprobe, need_ffmpeg, rotation, stream
from synth import load_rgb, pan_frames, tiny_checkpoint

from vidrestore.faces import FaceOptions
from vidrestore.faces.api import track_video
from vidrestore.io import VideoReader, WriterOptions, probe
from vidrestore.io.orientation import display_facts, quarter_turns
from vidrestore.restore.api import restore_video
from vidrestore.restore.options import RestoreOptions
from vidrestore.restore.pipeline import Restorer

W, H, N = 400, 240, 24
RESTORED = 2  # frames restored: the tiny network takes one to two seconds a face on 2 cores
ROTATIONS = (90, 180, 270)


def display_matrix(degrees: int) -> tuple[int, ...]:
    """FFmpeg's display matrix (16.16 fixed point, 2.30 in the corner) for a counter-clockwise
    display rotation."""
    c, s = round(math.cos(math.radians(degrees))), round(math.sin(math.radians(degrees)))
    return (c << 16, -s << 16, 0, s << 16, c << 16, 0, 0, 0, 1 << 30)


def encode(path: Path, pictures: list[np.ndarray], matrix: tuple[int, ...] | None) -> Path:
    """Lossless FFV1 4:4:4 in Matroska, tagged with ``matrix``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=25)
        vs.height, vs.width = pictures[0].shape[:2]
        vs.pix_fmt = "yuv444p"
        if matrix is not None:
            vs.set_display_matrix(matrix)
        for p in pictures:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(p), "rgb24")))
        out.mux(vs.encode())
    return path


def shown_by_ffmpeg(path: Path) -> np.ndarray:
    """The first frame as the ffmpeg program displays it (it applies the display matrix)."""
    info = stream(ffprobe(path), "video")
    w, h = info["width"], info["height"]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f",
                          "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True,
                         check=True).stdout
    turned = rotation(ffprobe(path)) in (90, -90, 270, -270)
    return np.frombuffer(raw, np.uint8).reshape((w, h, 3) if turned else (h, w, 3))


@pytest.fixture(scope="module")
def frames(media_dir: Path) -> list[np.ndarray]:
    """Two real faces panning, upright."""
    photo = cv2.resize(load_rgb(media_dir / "fr_two_people.jpg"), (450, 264),
                       interpolation=cv2.INTER_AREA)
    return pan_frames(photo, N, (W, H), step=(0.6, 0.2))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, frames: list[np.ndarray]) -> dict[int, Path]:
    """The upright clip (key 0) and its rotated copies, all named ``clip.mkv`` (a sheet's
    title is the file name)."""
    need_ffmpeg()
    root = tmp_path_factory.mktemp("rotation")
    out = {0: encode(root / "0" / "clip.mkv", frames, None)}
    for degrees in ROTATIONS:
        k = degrees // 90
        # stored so that turning it counter-clockwise by the rotation shows it upright
        out[degrees] = encode(root / str(degrees) / "clip.mkv",
                              [np.rot90(f, -k) for f in frames], display_matrix(degrees))
    return out


def test_the_clips_display_upright(clips: dict[int, Path]) -> None:
    """The test material itself: tags as ffprobe reads them, pictures as ffmpeg shows them."""
    upright = shown_by_ffmpeg(clips[0])
    for degrees in ROTATIONS:
        info = probe(clips[degrees])
        assert info.rotation == degrees and quarter_turns(info.rotation) == degrees // 90
        assert rotation(ffprobe(clips[degrees])) in (degrees, degrees - 360)
        assert (info.width, info.height) == ((H, W) if degrees % 180 else (W, H))
        assert np.abs(shown_by_ffmpeg(clips[degrees]).astype(int) - upright).max() <= 1


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("rot-ckpt") / "tiny.pth")


def _track(src: Path, out: Path, detector) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    track_video(src, out / "preview.mkv", out / "tracks.json", progress=False,
                detector=detector, sheet=out / "sheet.png",
                writer=WriterOptions(codec="ffv1"))
    return json.loads((out / "tracks.json").read_text())


@pytest.fixture(scope="module")
def tracked_upright(clips: dict[int, Path], detector, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("track-0")
    return _track(clips[0], out, detector), out


@pytest.mark.parametrize("degrees", ROTATIONS)
def test_track_finds_the_upright_faces(clips, detector, tracked_upright, tmp_path: Path,
                                       degrees: int) -> None:
    ref, ref_dir = tracked_upright
    got = _track(clips[degrees], tmp_path, detector)
    assert [t["id"] for t in got["tracks"]] == [t["id"] for t in ref["tracks"]] == [1, 2]
    for a, b in zip(got["tracks"], ref["tracks"], strict=True):
        assert [f["frame"] for f in a["frames"]] == [f["frame"] for f in b["frames"]]
        marks = np.array([f["landmarks"] for f in a["frames"]])
        assert np.abs(marks - np.array([f["landmarks"] for f in b["frames"]])).max() < 0.5
        boxes = np.array([f["box"] for f in a["frames"]])
        assert np.abs(boxes - np.array([f["box"] for f in b["frames"]])).max() < 0.5
    # coordinates are said to be the displayed picture's
    video = got["video"]
    assert video["rotation"] == degrees and video["coordinates"] == "display"
    assert (video["display_width"], video["display_height"]) == (W, H)
    # the sheet shows the same upright faces; the preview is stored and tagged as the source
    sheet, ref_sheet = (cv2.imread(str(d / "sheet.png")) for d in (tmp_path, ref_dir))
    assert sheet.shape == ref_sheet.shape and np.abs(sheet.astype(int) - ref_sheet).max() <= 2
    src, preview = probe(clips[degrees]), probe(tmp_path / "preview.mkv")
    assert (preview.width, preview.height, preview.rotation) == (src.width, src.height, degrees)
    k = degrees // 90
    for a, b in zip(_pictures(tmp_path / "preview.mkv"), _pictures(ref_dir / "preview.mkv"),
                    strict=True):
        assert np.array_equal(np.rot90(a, k), b)


def _pictures(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return [f.pixels for f in reader]


def _options(weights: Path) -> RestoreOptions:
    return RestoreOptions(weights=str(weights), device="cpu", batch_size=2)


def _restore(src: Path, dst: Path, weights: Path, detector, **kw) -> dict[int, int]:
    options, faces = _options(weights), FaceOptions()
    restorer = Restorer(options, faces, detector=detector, keep_tracks="report" in kw)
    summary = restore_video(src, dst, options, faces=faces, progress=False, restorer=restorer,
                            writer=WriterOptions(codec="ffv1"), end=f"{RESTORED}f", **kw)
    return summary.faces_restored


@pytest.fixture(scope="module")
def restored_upright(clips, weights, detector, tmp_path_factory) -> tuple[dict[int, int], Path]:
    out = tmp_path_factory.mktemp("restore-0")
    faces = _restore(clips[0], out / "out.mkv", weights, detector, compare=out / "side.mkv")
    return faces, out


@pytest.mark.parametrize("degrees", ROTATIONS)
def test_restore_works_upright_and_keeps_the_stored_picture(clips, weights, detector,
                                                           restored_upright, tmp_path: Path,
                                                           degrees: int) -> None:
    ref_faces, ref_dir = restored_upright
    side = tmp_path / "side.mkv" if degrees == 90 else None
    report = tmp_path / "tracks.json" if degrees == 270 else None
    faces = _restore(clips[degrees], tmp_path / "out.mkv", weights, detector, compare=side,
                     report=report)
    assert faces == ref_faces == {1: RESTORED, 2: RESTORED}
    src, out = probe(clips[degrees]), probe(tmp_path / "out.mkv")
    assert (out.width, out.height) == (src.width, src.height)
    assert out.rotation == degrees and out.display_matrix == src.display_matrix
    assert rotation(ffprobe(tmp_path / "out.mkv")) == rotation(ffprobe(clips[degrees]))
    k = degrees // 90
    ours, theirs = _pictures(tmp_path / "out.mkv"), _pictures(ref_dir / "out.mkv")
    sources = _pictures(clips[0])[:RESTORED]
    for mine, ref, before in zip(ours, theirs, sources, strict=True):
        shown = np.rot90(mine, k).astype(int)
        assert np.abs(shown - ref).max() <= 1  # the same restoration, turned
        assert np.abs(shown - before).max() > 20  # (and the faces did change)
    if side is not None:  # the comparison is written upright
        wide = probe(side)
        assert (wide.width, wide.height, wide.rotation) == (2 * W, H, 0)
        for a, b in zip(_pictures(side), _pictures(ref_dir / "side.mkv"), strict=True):
            assert np.abs(a.astype(int) - b).max() <= 1
    if report is not None:
        video = json.loads(report.read_text())["video"]
        assert (video["coordinates"], video["display_width"], video["display_height"]) == (
            "display", W, H)


def test_restorer_takes_frames_as_upright_unless_told(clips, weights, detector,
                                                      tracked_upright) -> None:
    with VideoReader(clips[90]) as reader:
        stored = [f for f, _ in zip(reader, range(6), strict=False)]
    # blend 0: faces are found and tracked, none goes through the network
    options = dataclasses.replace(_options(weights), blend=0.0)
    sideways = Restorer(options, FaceOptions(), detector=detector, keep_tracks=True)
    assert sideways.rotation == 0
    list(sideways.process(stored))
    turned = Restorer(options, FaceOptions(), detector=detector, keep_tracks=True,
                      rotation=90)
    outs = list(turned.process(stored))
    assert turned.rotation == 90 and turned.track_ids == {1, 2} and len(sideways.track_ids) < 2
    assert [o.size for o in outs] == [f.size for f in stored] == [(H, W)] * 6
    assert all(o is f for o, f in zip(outs, stored, strict=True))  # untouched: as decoded
    # in upright coordinates: the first detections are those of the upright clip
    ref = {t["id"]: t["frames"][0]["landmarks_raw"] for t in tracked_upright[0]["tracks"]}
    for tid, faces in turned.tracks.items():
        assert np.abs(faces[0].landmarks_raw - np.array(ref[tid])).max() < 0.01


def test_a_rotation_that_is_no_quarter_turn_is_warned_once(caplog) -> None:
    class Info:
        width, height, rotation, path = W, H, 45, Path("tilted.mp4")

    with caplog.at_level(logging.WARNING):
        assert quarter_turns(45, "tilted.mp4") == 0
        assert quarter_turns(45, "tilted.mp4") == 0
        assert quarter_turns(-90) == 3 and quarter_turns(270) == 3 and quarter_turns(180) == 2
    assert sum("not a quarter turn" in r.getMessage() for r in caplog.records) == 1
    assert display_facts(Info()) == {"coordinates": "stored"}
    Info.rotation = 90
    assert display_facts(Info()) == {"coordinates": "display", "display_width": H,
                                     "display_height": W}



def test_batch_restores_upright_in_segments(frames, weights, detector, restored_upright,
                                            tmp_path: Path) -> None:
    from vidrestore.batch import BatchConfig, BatchOptions, run_batch
    from vidrestore.batch.segments import SegmentWorker

    src = encode(tmp_path / "in" / "clip.mkv", [np.rot90(f, -1) for f in frames[:RESTORED]],
                 display_matrix(90))
    options, faces = _options(weights), FaceOptions()
    worker = SegmentWorker(options, faces, detector=detector)
    config = BatchConfig(tmp_path / "out", restore=options, faces=faces,
                         batch=BatchOptions(segment_frames=1))  # a snapshot between segments
    assert run_batch([src], config, worker=worker).ok
    got = tmp_path / "out" / "clip.mkv"
    info = probe(got)
    assert (info.width, info.height, info.rotation) == (H, W, 90)
    ref = _pictures(restored_upright[1] / "out.mkv")
    for mine, theirs in zip(_pictures(got), ref, strict=True):
        assert np.abs(np.rot90(mine, 1).astype(int) - theirs).max() <= 1


def test_preview_pictures_are_upright(clips, frames, weights, detector, tmp_path: Path) -> None:
    from vidrestore.restore.preview import preview_video

    # blend 0 keeps the network idle: the pictures are the source frames, as displayed
    options = dataclasses.replace(_options(weights), blend=0.0, temporal="off")
    restorer = Restorer(options, FaceOptions(), detector=detector, keep_tracks=True)
    summary = preview_video(clips[90], tmp_path / "pv", options, at=[0.4], restorer=restorer)
    (shot,) = summary.frames
    assert shot.faces == 2
    expected = _pictures(clips[0])[shot.index]
    for name in (shot.source, shot.restored):
        picture = cv2.cvtColor(cv2.imread(name), cv2.COLOR_BGR2RGB)
        assert np.array_equal(picture, expected)
    assert cv2.imread(shot.side_by_side).shape == (H, 2 * W, 3)
