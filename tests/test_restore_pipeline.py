"""Restoration end to end: real faces, the real YuNet detector, the tiny synthetic CodeFormer."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from procs import default_sigint
from synth import as_frames, load_rgb, pan_frames, write_clip

from vidrestore.faces import FaceOptions, similarity_transform
from vidrestore.faces.cuts import HELD_LONGEST, HeldFrames
from vidrestore.io import VideoReader
from vidrestore.io.frame import Frame
from vidrestore.restore.api import restore_video
from vidrestore.restore.blend import paste_face, template_mask
from vidrestore.restore.options import RestoreOptions
from vidrestore.restore.pipeline import Restorer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_faces(media_dir: Path) -> np.ndarray:
    img = load_rgb(media_dir / "fr_two_people.jpg")
    return cv2.resize(img, (450, 264), interpolation=cv2.INTER_AREA)


def _restorer(ckpt: Path, detector, face_options: FaceOptions | None = None, **opts
              ) -> Restorer:
    return Restorer(RestoreOptions(weights=str(ckpt), batch_size=2, **opts),
                    face_options or FaceOptions(), detector=detector, keep_tracks=True)


def _coverage(shape: tuple[int, ...], faces) -> np.ndarray:
    """Pixels a paste of these tracked faces may touch."""
    canvas = np.zeros(shape, np.uint8)
    ones = np.ones((512, 512, 3), np.float32)
    for f in faces:
        paste_face(canvas, ones, template_mask(), similarity_transform(f.landmarks))
    return canvas[..., 0] > 0


def _faces_at(r: Restorer, index: int, track: int | None = None):
    return [f for tid, fs in r.tracks.items() for f in fs
            if f.frame_index == index and (track is None or tid == track)]


def test_background_is_untouched_and_faces_change(ckpt, detector, two_faces) -> None:
    frames = as_frames(pan_frames(two_faces, 6, (400, 240), step=(0.6, 0.2)))
    r = _restorer(ckpt, detector)
    pairs = list(r.process_pairs(frames))
    assert [p[1].index for p in pairs] == list(range(6))
    assert len(r.tracks) == 2 and all(len(v) == 6 for v in r.tracks.values())
    for src, out in pairs:
        assert out.pts == src.pts and out.pixels.dtype == np.uint8
        cover = _coverage(src.pixels.shape, _faces_at(r, src.index))
        assert np.array_equal(out.pixels[~cover], src.pixels[~cover])
        changed = np.any(out.pixels != src.pixels, axis=2)
        assert changed.sum() > 0.2 * cover.sum()


def test_only_chosen_tracks_are_restored(ckpt, detector, two_faces) -> None:
    frames = as_frames(pan_frames(two_faces, 3, (400, 240)))
    r = _restorer(ckpt, detector, faces=(2,))
    pairs = list(r.process_pairs(frames))
    assert r.faces_restored == {2: 3}
    for src, out in pairs:
        keep = ~_coverage(src.pixels.shape, _faces_at(r, src.index, track=2))
        assert np.array_equal(out.pixels[keep], src.pixels[keep])
        assert not np.array_equal(out.pixels, src.pixels)


def test_blend_mixes_the_restored_face_with_the_original(ckpt, detector, two_faces) -> None:
    frames = as_frames(pan_frames(two_faces, 4, (400, 240)))
    full = [p[1].pixels for p in _restorer(ckpt, detector).process_pairs(frames)]
    ones = [f.pixels for f in _restorer(ckpt, detector, blend=1.0).process(frames)]
    assert all(np.array_equal(a, b) for a, b in zip(ones, full, strict=True))
    none = _restorer(ckpt, detector, blend=0.0)
    for src, out in zip(frames, none.process(frames), strict=True):
        assert np.array_equal(out.pixels, src.pixels)  # untouched, bit for bit
    assert none.faces_restored == {} and none.track_ids == {1, 2}  # and no network time
    half = [f.pixels for f in _restorer(ckpt, detector, blend=0.5).process(frames)]
    for src, h, f in zip(frames, half, full, strict=True):
        s, h, f = (x.astype(np.float64) for x in (src.pixels, h, f))
        moved = np.abs(f - s) >= 8
        assert moved.sum() > 1000
        # halfway between the original and the fully restored face, up to rounding
        assert np.abs(h - (s + f) / 2)[moved].max() <= 1.0


def test_track_settings_change_only_their_track(ckpt, detector, two_faces) -> None:
    frames = as_frames(pan_frames(two_faces, 4, (400, 240)))
    base = _restorer(ckpt, detector)
    full = [p[1].pixels for p in base.process_pairs(frames)]
    cover = {tid: [_coverage(f.pixels.shape, _faces_at(base, f.index, tid)) for f in frames]
             for tid in (1, 2)}
    for text in ("2:fidelity=0.9,blend=0.6", "2:skip", "1:fidelity=0.5;2:blend=0.3"):
        r = _restorer(ckpt, detector, track_settings=text)
        for i, out in enumerate(r.process(frames)):
            other = ~cover[2][i]  # where track 2 cannot have pasted: exactly the default run
            assert np.array_equal(out.pixels[other], full[i][other]), (text, i)
            if text == "2:skip":  # track 2 left as it was, track 1 restored as usual
                assert np.array_equal(out.pixels[cover[2][i]], frames[i].pixels[cover[2][i]])
            else:
                assert not np.array_equal(out.pixels[cover[2][i]], full[i][cover[2][i]]), text
        assert (r.faces_restored.get(2, 0) == 0) == (text == "2:skip")
    # a fidelity of its own goes through the network in batches of its own, as the whole run
    alone = _restorer(ckpt, detector, fidelity=0.9, blend=0.6)
    mixed = _restorer(ckpt, detector, track_settings="2:fidelity=0.9,blend=0.6")
    for a, b, c in zip(alone.process(frames), mixed.process(frames), cover[2], strict=True):
        keep = c & ~cover[1][0]  # (track 1 is far from track 2 in this clip)
        assert np.array_equal(a.pixels[keep], b.pixels[keep])


def test_static_face_gives_identical_frames_in_window_mode(ckpt, detector, two_faces) -> None:
    still = two_faces[:240, :400].copy()
    frames = [Frame(i, i, Fraction(1, 25), still.copy()) for i in range(5)]
    # Without detector dithering, identical frames give identical landmarks and aligned faces.
    r = _restorer(ckpt, detector, FaceOptions(dither=False), temporal="window", window=2)
    outs = list(r.process(frames))
    assert not np.array_equal(outs[0].pixels, still)
    for o in outs[1:]:
        assert np.array_equal(o.pixels, outs[0].pixels)


def _face_flicker(ckpt, detector, frames: list[Frame], mode: str) -> float:
    r = _restorer(ckpt, detector, temporal=mode, window=3)
    outs = [o.pixels.astype(np.float32) for o in r.process(frames)]
    cover = _coverage(frames[0].pixels.shape, _faces_at(r, 0))
    steps = itertools.pairwise(outs)
    return float(np.mean([np.abs(b - a)[cover].mean() for a, b in steps]))


def test_temporal_modes_reduce_flicker_on_a_nearly_static_face(ckpt, detector, two_faces) -> None:
    rng = np.random.default_rng(7)
    base = pan_frames(two_faces, 6, (230, 240), step=(0.15, 0.05))  # the left face only
    noisy = [np.clip(b + rng.normal(0, 4, b.shape), 0, 255).astype(np.uint8) for b in base]
    frames = as_frames(noisy)
    off = _face_flicker(ckpt, detector, frames, "off")
    win = _face_flicker(ckpt, detector, frames, "window")
    rec = _face_flicker(ckpt, detector, frames, "recurrent")
    assert win < 0.8 * off and rec < off, (off, win, rec)


def test_a_held_picture_is_restored_once_and_keeps_its_face(ckpt, detector, media_dir) -> None:
    """``lp_s13.mp4`` shows 15 pictures a second at 25 fps. On each repeated picture the face
    restored on the frame before is pasted again: the network runs once per picture, and from
    the first frame of a repeat to the next the output changes only where the source does,
    and no more than it does (the encoder's noise outside the face's mask)."""
    with VideoReader(media_dir / "lp_s13.mp4") as reader:
        frames = [f for f, _ in zip(reader, range(25), strict=False)]
    held = HeldFrames()
    repeats = [held.update(f.analysis) for f in frames]
    r = _restorer(ckpt, detector)
    outs = [o.pixels.astype(np.int16) for o in r.process(frames)]
    faces = {n: _faces_at(r, n) for n in range(len(frames))}
    on_held = sum(len(faces[n]) for n in range(len(frames)) if repeats[n])
    on_new = sum(len(faces[n]) for n in range(len(frames)) if not repeats[n])
    assert on_held >= 8 and on_new >= 12, (on_held, on_new)
    assert r.engine.decoded == on_new
    assert sum(r.faces_restored.values()) == on_held + on_new
    src = [f.pixels.astype(np.int16) for f in frames]
    for n in range(1, len(frames)):
        if repeats[n] and faces[n]:
            cover = _coverage(src[n].shape, faces[n])
            changed = np.abs(outs[n] - outs[n - 1])[cover]
            assert (changed <= np.abs(src[n] - src[n - 1])[cover] + 1).all(), n
            assert not np.array_equal(outs[n][cover], src[n][cover]), "the face is restored"


@pytest.mark.parametrize("temporal", ["off", "window"])
def test_a_preview_of_repeated_pictures_equals_the_full_run(tmp_path, ckpt, mirror_env,
                                                            two_faces, temporal) -> None:
    """Pictures shown at 25 fps from 15 a second: a chosen frame that repeats the picture
    before is previewed with the face of the frame its repeat started on, as the full run
    pastes it."""
    from vidrestore.restore.preview import preview_video

    moving = pan_frames(two_faces, 15, (400, 240))
    shown = [moving[t * 3 // 5] for t in range(25)]
    clip = write_clip(tmp_path / "in.mp4", shown)
    options = RestoreOptions(weights=str(ckpt), temporal=temporal, window=1, mask="template")
    (tmp_path / "full").mkdir()
    restore_video(clip, tmp_path / "full" / "f_%03d.png", options, progress=False)
    with VideoReader(clip) as reader:
        held = HeldFrames()
        repeats = [n for n, f in enumerate(reader) if held.update(f.analysis)]
    chosen = [n for n in repeats if n >= 8][:3]
    assert len(chosen) == 3, repeats
    summary = preview_video(clip, tmp_path / "look", options, at=[n / 25 for n in chosen])
    assert [f.index for f in summary.frames] == chosen
    for f in summary.frames:
        full = load_rgb(tmp_path / "full" / f"f_{f.index + 1:03d}.png")
        assert np.array_equal(load_rgb(Path(f.restored)), full), f.index


def test_state_snapshot_continues_bit_for_bit(ckpt, detector, two_faces) -> None:
    frames = as_frames(pan_frames(two_faces, 6, (230, 240)))  # the left face only
    whole = [f.pixels for f in _restorer(ckpt, detector).process(frames)]
    first = _restorer(ckpt, detector)
    part = [f.pixels for f in first.process(frames[:4], final=False)]
    state = first.get_state()
    second = _restorer(ckpt, detector)
    second.set_state(state)
    part += [f.pixels for f in second.process(frames[4:])]
    assert len(part) == len(whole)
    for a, b in zip(part, whole, strict=True):
        assert np.array_equal(a, b)


# -- files and the command line ------------------------------------------------------------------

def _packets(path: Path, kind: str) -> list[tuple[int | None, str]]:
    with av.open(str(path)) as c:
        s = next(s for s in c.streams if s.type == kind)
        return [(p.pts, hashlib.md5(bytes(p)).hexdigest()) for p in c.demux(s) if p.size]


def _video_pts(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, two_faces) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mp4",
                      pan_frames(two_faces, 8, (400, 240)))


@pytest.fixture()
def mirror_env(monkeypatch: pytest.MonkeyPatch, mirror_dir: Path) -> dict[str, str]:
    monkeypatch.setenv("VIDRESTORE_MIRROR", str(mirror_dir))
    return dict(os.environ, PYTHONPATH=str(REPO))


def test_restore_video_keeps_audio_timing_and_writes_report(tmp_path, ckpt, clip, mirror_env
                                                            ) -> None:
    out, side, rep = tmp_path / "out.mp4", tmp_path / "side.mp4", tmp_path / "tracks.json"
    s = restore_video(clip, out, RestoreOptions(weights=str(ckpt)), report=rep, compare=side,
                      progress=False)
    assert s.frames == 8 and sum(s.faces_restored.values()) == 16 and s.tracks == 2
    assert _video_pts(out) == _video_pts(clip)
    assert _packets(out, "audio") == _packets(clip, "audio")
    with av.open(str(side)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (800, 240)
    data = json.loads(rep.read_text())
    assert len(data["tracks"]) == 2 and all(len(t["frames"]) == 8 for t in data["tracks"])


def test_chosen_ids_that_never_appear_are_named(tmp_path, ckpt, clip, mirror_env, caplog
                                                ) -> None:
    with caplog.at_level("WARNING"):
        s = restore_video(clip, tmp_path / "out.mp4", RestoreOptions(weights=str(ckpt),
                                                                     faces=(2, 9)),
                          progress=False)
    assert set(s.faces_restored) == {2}
    said = [r.getMessage() for r in caplog.records if "--faces" in r.getMessage()]
    assert said == ["--faces: track 9 never appeared (tracks found: 1, 2)"]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidrestore", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


@pytest.mark.parametrize("content", [b"<html>not found</html>", b"", "state dict of another net"])
def test_cli_broken_parsing_model_in_the_cache_is_one_line(tmp_path, ckpt, clip, mirror_env,
                                                           content) -> None:
    """``--mask auto`` uses ParseNet when its file is cached; a file that is not ParseNet's
    weights (read by the same safe loader as every checkpoint) is named in one warning line and
    the template mask is used; ``--mask parse`` stops with that line."""
    import torch

    home = tmp_path / "cache"
    home.mkdir()
    junk = home / "parsing_parsenet.pth"
    if isinstance(content, bytes):
        junk.write_bytes(content)
    else:
        torch.save({"conv.weight": torch.zeros(3, 3, 1, 1)}, junk)
    before = junk.read_bytes()
    out = tmp_path / "out.mp4"
    env = dict(mirror_env, VIDRESTORE_HOME=str(home))
    r = _cli("restore", str(clip), "-o", str(out), "--weights", str(ckpt), "--mask", "parse",
             "--no-progress", env=env)
    assert r.returncode == 5, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(junk) in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not out.exists() and junk.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    assert not (home / "recorded.json").exists()  # not trusted on a first use that failed
    r = _cli("restore", str(clip), "-o", str(out), "--weights", str(ckpt), "--no-progress",
             env=env)
    assert r.returncode == 0 and out.exists(), r.stderr
    warned = [line for line in r.stderr.splitlines() if str(junk) in line]
    assert len(warned) == 1 and "using the template mask" in warned[0], r.stderr


def test_cli_restore_is_deterministic_and_refuses_to_overwrite(tmp_path, ckpt, clip, mirror_env
                                                               ) -> None:
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    common = ["--weights", str(ckpt), "--video-codec", "ffv1", "--no-progress"]
    r = _cli("restore", str(clip), "-o", str(a), *common, "--faces", "1", env=mirror_env)
    assert r.returncode == 0, r.stderr
    assert "8 frames" in r.stdout and "8 faces restored in 1 tracks" in r.stdout
    assert _cli("restore", str(clip), "-o", str(b), *common, "--faces", "1",
                env=mirror_env).returncode == 0
    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        fa = [f.to_ndarray(format="rgb24") for f in ca.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in cb.decode(video=0)]
    assert len(fa) == 8 and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    before = a.read_bytes()
    r = _cli("restore", str(clip), "-o", str(a), *common, env=mirror_env)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "exists" in r.stderr and a.read_bytes() == before


def test_cli_blend_zero_gives_back_the_decoded_input(tmp_path, ckpt, clip, mirror_env) -> None:
    out = tmp_path / "seq" / "f_%03d.png"
    r = _cli("restore", str(clip), "-o", str(out), "--weights", str(ckpt), "--blend", "0",
             "--no-progress", env=mirror_env)
    assert r.returncode == 0, r.stderr
    from vidrestore.io import VideoReader

    with VideoReader(clip) as reader:  # the library's own decode of the input
        source = [f.pixels for f in reader]
    got = [load_rgb(tmp_path / "seq" / f"f_{i:03d}.png") for i in range(1, len(source) + 1)]
    assert len(source) == 8 and all(np.array_equal(a, b) for a, b in zip(got, source, strict=True))
    assert "0 faces restored" in r.stdout
    bad = _cli("restore", str(clip), "-o", str(tmp_path / "x.mp4"), "--blend", "1.5",
               env=mirror_env)
    assert bad.returncode == 2 and "--blend" in bad.stderr and not (tmp_path / "x.mp4").exists()


def test_cli_track_settings_from_a_file_and_their_errors(tmp_path, ckpt, clip, mirror_env
                                                         ) -> None:
    common = ["--weights", str(ckpt), "--video-codec", "ffv1", "--no-progress"]
    inline, from_file = tmp_path / "a.mkv", tmp_path / "b.mkv"
    r = _cli("restore", str(clip), "-o", str(inline), *common, "--track-settings",
             "1:skip;2:fidelity=0.8;9:blend=0.5", env=mirror_env)
    assert r.returncode == 0, r.stderr
    assert "8 faces restored in 1 tracks" in r.stdout  # track 1 skipped
    assert "--track-settings: track 9 never appeared (tracks found: 1, 2)" in r.stderr
    toml = tmp_path / "s.toml"
    toml.write_text("[1]\nskip = true\n[2]\nfidelity = 0.8\n[9]\nblend = 0.5\n")
    r = _cli("restore", str(clip), "-o", str(from_file), *common, "--track-settings", str(toml),
             env=mirror_env)
    assert r.returncode == 0, r.stderr
    with av.open(str(inline)) as ca, av.open(str(from_file)) as cb:
        assert all(np.array_equal(x.to_ndarray(format="rgb24"), y.to_ndarray(format="rgb24"))
                   for x, y in zip(ca.decode(video=0), cb.decode(video=0), strict=True))
    for bad, said in (("2:sharpness=1", "track 2: unknown setting 'sharpness'"),
                      ("two:skip", "'two' is not a track ID"),
                      ("2:blend=1.5", "track 2: blend=1.5 is outside 0-1"),
                      (str(tmp_path / "none.json"), "cannot read")):
        out = tmp_path / "bad.mkv"
        r = _cli("restore", str(clip), "-o", str(out), *common, "--track-settings", bad,
                 env=mirror_env)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and said in lines[0], r.stderr
        assert not out.exists()


def test_preview_frames_equal_the_full_run(tmp_path, ckpt, mirror_env, two_faces) -> None:
    from vidrestore.restore.preview import preview_video

    clip = write_clip(tmp_path / "in.mp4", pan_frames(two_faces, 24, (400, 240)))
    options = RestoreOptions(weights=str(ckpt), window=2, mask="template")
    (tmp_path / "full").mkdir()
    restore_video(clip, tmp_path / "full" / "f_%03d.png", options, progress=False)
    summary = preview_video(clip, tmp_path / "look", options, count=3)
    assert [f.index for f in summary.frames] == [4, 12, 20] and summary.exact
    for f in summary.frames:
        full = load_rgb(tmp_path / "full" / f"f_{f.index + 1:03d}.png")
        assert np.array_equal(load_rgb(Path(f.restored)), full), f.index  # exactly
        source = load_rgb(Path(f.source))
        assert not np.array_equal(source, full) and f.faces == 2
        assert np.array_equal(load_rgb(Path(f.side_by_side)), np.concatenate([source, full], 1))
    # only the faces the chosen frames depend on went through the network
    assert summary.faces_through_network <= 3 * (2 * options.window + 1 + HELD_LONGEST) * 2
    assert summary.frames_read <= 20 + 12 + 2 + 1 and summary.estimated_seconds > 0
    data = json.loads((tmp_path / "look" / "preview.json").read_text())
    assert [f["index"] for f in data["frames"]] == [4, 12, 20]
    # frames chosen by time; pictures are never replaced without overwrite
    before = sorted(p.name for p in (tmp_path / "look").iterdir())
    r = _cli("preview", str(clip), "-o", str(tmp_path / "at"), "--weights", str(ckpt),
             "--window", "2", "--mask", "template", "--at", "0.5", env=mirror_env)
    assert r.returncode == 0 and "frame 12 (0.48 s, 2 faces)" in r.stdout, r.stderr
    assert np.array_equal(load_rgb(tmp_path / "at" / "frame_000012.restored.png"),
                          load_rgb(tmp_path / "full" / "f_013.png"))
    r = _cli("preview", str(clip), "-o", str(tmp_path / "look"), "--weights", str(ckpt),
             "--frames", "3", env=mirror_env)
    assert r.returncode == 4 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in (tmp_path / "look").iterdir()) == before
    r = _cli("preview", str(clip), "-o", str(tmp_path / "new"), "--at", "9", env=mirror_env)
    assert r.returncode == 2 and "--at" in r.stderr and not (tmp_path / "new").exists()


def test_cli_restores_an_image_sequence_at_the_given_rate(tmp_path, ckpt, two_faces, mirror_env
                                                          ) -> None:
    scan = tmp_path / "scan"
    scan.mkdir()
    for i, img in enumerate(pan_frames(two_faces, 4, (400, 240))):
        cv2.imwrite(str(scan / f"f_{i + 1:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mkv"
    args = ["restore", str(scan), "-o", str(out), "--weights", str(ckpt), "--video-codec",
            "ffv1", "--no-progress"]
    r = _cli(*args, env=mirror_env)
    assert r.returncode == 2 and "--fps" in r.stderr and not out.exists(), r.stderr
    r = _cli(*args, "--fps", "24000/1001", env=mirror_env)
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == Fraction(24000, 1001)
        assert sum(1 for _ in c.decode(video=0)) == 4


@pytest.mark.parametrize("case", ["not_video", "missing_weights", "same_path", "report_taken",
                                  "report_folder_missing", "compare_is_output", "one_image",
                                  "value_out_of_range", "smooth_nan", "score_nan",
                                  "gain_nan"])
def test_cli_bad_input_one_line_no_output(tmp_path, ckpt, clip, mirror_env, case) -> None:
    env = dict(mirror_env, VIDRESTORE_OFFLINE="1")
    src, out = clip, tmp_path / "out.mp4"
    args = ["--weights", str(ckpt)]
    kept = tmp_path / "tracks.json"
    kept.write_text("{}\n")
    if case == "not_video":
        src = tmp_path / "notes.mp4"
        src.write_text("not a video\n")
    elif case == "missing_weights":
        args = []
    elif case == "report_taken":  # refused before the run, not after it
        args += ["--report", str(kept)]
    elif case == "report_folder_missing":
        args += ["--report", str(tmp_path / "no" / "tracks.json")]
    elif case == "compare_is_output":
        args += ["--compare", str(out)]
    elif case == "one_image":
        out = tmp_path / "still.png"
    elif case == "value_out_of_range":  # refused by the option parser, also in one line
        args += ["--fidelity", "2"]
    elif case.endswith("_nan"):  # NaN is inside every range as far as comparisons go
        flag = {"smooth_nan": "--smooth", "score_nan": "--score-threshold",
                "gain_nan": "--recurrent-gain"}[case]
        args += [flag, "nan"]
    else:
        out = clip
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    r = _cli("restore", str(src), "-o", str(out), *args, "--no-progress", env=env)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert {"compare_is_output": "names the same file as the output",
            "one_image": "still_%06d.png", "value_out_of_range": "'--fidelity'",
            "smooth_nan": "--smooth: nan is not a finite number",
            "score_nan": "--score-threshold: nan is not a finite number",
            "gain_nan": "--recurrent-gain: nan is not a finite number",
            }.get(case, "") in r.stderr
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    if case != "same_path":
        assert not out.exists()
    assert kept.read_text() == "{}\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_leaves_no_output(tmp_path, ckpt, two_faces, mirror_env, sig) -> None:
    long_clip = write_clip(tmp_path / "long.mp4", pan_frames(two_faces, 60, (400, 240)))
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidrestore", "restore", str(long_clip), "-o", str(out),
         "--weights", str(ckpt), "--no-progress"],
        env=mirror_env, cwd=REPO, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".") for p in tmp_path.iterdir()):
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -sig, err  # a shell reports 128 + the signal's number
    said = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


_CONVERTING_COMMAND = r"""
import os, signal, sys, time
import click
from vidrestore import cli
from vidrestore.errors import VidrestoreError

@click.command()
@click.argument("into")
def land(into):
    # the stop lands in code that reports every error as another one
    try:
        os.kill(os.getpid(), int(os.environ["SIG"]))
        time.sleep(30)
    except BaseException:
        if into == "import":  # onnxruntime's extension does this while it initialises
            raise ImportError("initialization failed") from None
        raise VidrestoreError("the file could not be read") from None

sys.modules["landing"] = sys.modules[__name__]
cli.COMMANDS["land"] = ("landing", "land")
sys.argv = ["vidrestore", "land", sys.argv[1]]
cli.main()
"""


@pytest.mark.parametrize("into", ["import", "error"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_turned_into_another_error_still_ends_by_its_signal(sig, into) -> None:
    """Ctrl-C or SIGTERM landing in a library that turns it into another exception (an
    ImportError, or an error the command would report as a failure) still ends the process by
    the signal, with the one line that says so."""
    r = subprocess.run([sys.executable, "-c", _CONVERTING_COMMAND, into], capture_output=True,
                       text=True, env=dict(os.environ, SIG=str(int(sig))), cwd=REPO,
                       timeout=120, preexec_fn=default_sigint)
    assert r.returncode == -sig, r.stderr
    said = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert r.stderr.strip() == f"vidrestore: {said}", r.stderr
