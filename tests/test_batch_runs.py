"""End-to-end batches on real faces: seams, kills, failures, changes, fields, 10/16-bit, B&W.

Every run uses the real pipeline (YuNet, the tiny CodeFormer with synthetic weights, PyAV
encoders) on clips made from a real photo. "Uninterrupted" references come from the library's
single-pass ``restore_video``; FFV1 is deterministic, so a resumed batch must give the same
packets (payloads and timestamps) and the same audio.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from synth import load_rgb, pan_frames, tiny_checkpoint, write_clip

from vidrestore.batch import BatchConfig, BatchOptions, run_batch
from vidrestore.batch.driver import dry_run
from vidrestore.batch.jobs import DB_NAME
from vidrestore.batch.segments import SegmentWorker
from vidrestore.cli import cli
from vidrestore.faces.options import FaceOptions
from vidrestore.io import WriterOptions
from vidrestore.restore.options import RestoreOptions
from vidrestore.restore.pipeline import resolve_device

REPO = Path(__file__).resolve().parents[1]
W, H = 160, 112


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("batch-ckpt") / "tiny.pth")


@pytest.fixture(scope="module")
def photo(media_dir: Path) -> np.ndarray:
    """Two real faces, about 45 px wide in a 160x112 frame."""
    img = load_rgb(media_dir / "fr_two_people.jpg")
    return cv2.resize(img, None, fx=0.36, fy=0.36, interpolation=cv2.INTER_AREA)[10:, 70:]


@pytest.fixture(scope="module")
def worker(weights: Path, yunet_path: Path) -> SegmentWorker:
    """One loaded network and detector for the in-process runs (as one batch worker has)."""
    from vidrestore.faces import create_detector

    restore, faces = _options(weights)
    detector = create_detector("yunet", faces, model_path=yunet_path)
    return SegmentWorker(restore, faces, detector=detector)


@pytest.fixture(scope="module", autouse=True)
def _mirror(mirror_in_env: Path) -> None:
    """YuNet from the shared mirror, for the module fixtures too."""


# Short look-ahead and temporal window so that frames come out of the restorer while a short
# clip is still being fed: seams then fall inside windows and inside the tracker's look-ahead.
CLI_OPTIONS = ("--device", "cpu", "--lookahead", "2", "--window", "2")


def _options(weights: Path) -> tuple[RestoreOptions, FaceOptions]:
    return (RestoreOptions(weights=str(weights), device="cpu", window=2),
            FaceOptions(lookahead=2))


def _texture(seed: int) -> np.ndarray:
    """A picture of coarse random blocks and no face (the network stays idle on it)."""
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (W * 2, H * 2))


def _clip(path: Path, photo: np.ndarray, n: int, step: tuple[float, float] = (0.6, 0.25),
          **kw: Any) -> Path:
    return write_clip(path, pan_frames(photo, n, (W, H), step=step), **kw)


@pytest.fixture(scope="module")
def reel(tmp_path_factory: pytest.TempPathFactory, photo: np.ndarray) -> Path:
    """8 frames, one face, with sound."""
    return _clip(tmp_path_factory.mktemp("reel") / "reel.mp4", photo, 8, audio=True)


@pytest.fixture(scope="module")
def reel_ref(reel: Path, worker: SegmentWorker, weights: Path) -> Path:
    return _reference(reel, reel.with_name("ref.mkv"), worker, weights)


def _reference(src: Path, dst: Path, worker: SegmentWorker, weights: Path) -> Path:
    """The uninterrupted single-pass output of the library."""
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.pipeline import Restorer

    restore, faces = _options(weights)
    restorer = Restorer(restore, faces, model=worker.model, detector=worker.detector)
    restore_video(src, dst, restore, faces=faces, writer=WriterOptions(codec="ffv1"),
                  progress=False, restorer=restorer)
    return dst


def _packets(path: Path) -> dict[str, list[tuple[int | None, int | None, bytes]]]:
    """Every stream's packets: (pts, duration, payload), in file order."""
    out: dict[str, list[tuple[int | None, int | None, bytes]]] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size:
                out.setdefault(p.stream.type, []).append((p.pts, p.duration, bytes(p)))
    return out


def _pictures(path: Path) -> list[tuple[int | None, bytes]]:
    """Every decoded video picture: (pts, planes)."""
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray().tobytes()) for f in c.decode(video=0)]


def _db(out: Path) -> sqlite3.Connection:
    db = sqlite3.connect(out / DB_NAME, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def _segments(out: Path) -> dict[tuple[int, int], sqlite3.Row]:
    with _db(out) as db:
        return {(r["job_id"], r["idx"]): r for r in db.execute("SELECT * FROM segments")}


def _jobs(out: Path) -> dict[str, sqlite3.Row]:
    with _db(out) as db:
        return {Path(r["source"]).name: r for r in db.execute("SELECT * FROM jobs")}


# -- seams -------------------------------------------------------------------------------------
def test_segments_join_invisibly(tmp_path: Path, reel: Path, reel_ref: Path,
                                 worker: SegmentWorker, weights: Path) -> None:
    restore, faces = _options(weights)
    out = tmp_path / "out"
    config = BatchConfig(out, restore=restore, faces=faces,
                         batch=BatchOptions(segment_frames=3))
    result = run_batch([reel], config, worker=worker)
    assert result.ok and result.ran == 1
    got = out / "reel.mkv"
    assert _packets(got) == _packets(reel_ref)  # every frame (seams included), pts, audio
    segs = sorted(_segments(out).values(), key=lambda r: r["idx"])
    assert [s["frames"] for s in segs] == [3, 3, 2]
    assert all(s["computed"] == 1 for s in segs)
    # frames inside the restorer's look-ahead at a seam came out with the next segment
    assert segs[0]["out_frames"] < 3 and segs[1]["out_frames"] > 0
    assert sum(s["out_frames"] for s in segs) == 8
    report = json.loads((out / "reel.mkv.report.json").read_text())
    assert report["output"]["frames"] == 8 and report["tracks"]["faces_restored"] == 8
    assert [s["computed"] for s in report["segments"]] == [1, 1, 1]
    assert set(report["versions"]) >= {"vidrestore", "torch", "av"}
    listing = (out / "reel.mkv.framemd5").read_text().splitlines()
    ffmpeg = subprocess.run(["ffmpeg", "-v", "error", "-i", str(got), "-map", "0:v", "-f",
                             "framemd5", "-"], capture_output=True, text=True, check=True)
    md5 = [ln.rsplit(",", 1)[1].strip() for ln in listing if not ln.startswith("#")]
    assert md5 == [ln.rsplit(",", 1)[1].strip() for ln in ffmpeg.stdout.splitlines()
                   if not ln.startswith("#")]
    assert subprocess.run(["sha256sum", "-c", "reel.mkv.sha256"], cwd=out).returncode == 0
    assert not (out / ".vidrestore-work" / "job_00001").exists()


# -- kills -------------------------------------------------------------------------------------
def _batch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vidrestore", "batch", *args]


def _env(tmp: Path, mirror_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(VIDRESTORE_MIRROR=str(mirror_dir), VIDRESTORE_OFFLINE="1",
               VIDRESTORE_HOME=str(tmp / "home"))
    return env


def _run_until(cmd: list[str], env: dict[str, str], out: Path, condition: Any,
               timeout: float = 900.0) -> dict[tuple[int, int], int]:
    """Start the batch, SIGKILL it as soon as ``condition(segments, jobs)`` holds; return the
    done segments' computation counts at that moment."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            if (out / DB_NAME).exists():
                try:
                    segs, jobs = _segments(out), _jobs(out)
                except sqlite3.OperationalError:
                    segs = None
                if segs is not None and condition(segs, jobs):
                    assert proc.poll() is None, "the batch finished before it could be killed"
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return {k: r["computed"] for k, r in _segments(out).items()
                            if r["status"] == "done"}
            if proc.poll() is not None:
                raise AssertionError(f"batch ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        raise AssertionError("condition not reached")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_batch_resumes_without_redoing_work(tmp_path: Path, photo: np.ndarray,
                                                   reel: Path, reel_ref: Path,
                                                   worker: SegmentWorker, weights: Path,
                                                   mirror_dir: Path) -> None:
    a = tmp_path / "a.mp4"
    a.write_bytes(reel.read_bytes())
    b = _clip(tmp_path / "b.mp4", photo[:, ::-1].copy(), 5, step=(-0.5, 0.3), audio=False)
    refs = {"a": reel_ref, "b": _reference(b, tmp_path / "ref_b.mkv", worker, weights)}
    out = tmp_path / "out"
    env = _env(tmp_path, mirror_dir)
    cmd = _batch_cmd(str(a), str(b), "--out", str(out), "--weights", str(weights),
                     *CLI_OPTIONS, "--segment-frames", "2")
    finished: dict[tuple[int, int], int] = {}  # computations of each segment when first done
    conditions = [
        # in the middle of the first film
        lambda s, j: any(r["status"] == "done" and r["job_id"] == 1 for r in s.values()),
        # inside the second film, after the first is done
        lambda s, j: j["a.mp4"]["status"] == "done" and any(
            r["status"] == "done" and r["job_id"] == 2 for r in s.values()),
        # right after a segment was started (before anything of it is recorded)
        lambda s, j: any(r["status"] == "running" and r["job_id"] == 2 and r["idx"] >= 2
                         for r in s.values()),
    ]
    for condition in conditions:
        for key, n in _run_until(cmd, env, out, condition).items():
            finished.setdefault(key, n)
    assert _jobs(out)["b.mp4"]["status"] == "running"  # as the killed run left it
    shown = json.loads(_cli("status", str(out), "--json").output)
    assert shown["counts"]["running"] == 0 and shown["counts"]["pending"] == 1  # no run holds it
    (out / ".b.partial-dead.mkv").write_bytes(b"left by a killed writer")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    segs = _segments(out)
    assert finished and all(segs[k]["computed"] == n for k, n in finished.items())  # kept
    assert any(r["computed"] > 1 for r in segs.values())  # killed segments were computed again
    for name, job_id in (("a", 1), ("b", 2)):  # the reports say so too
        report = json.loads((out / f"{name}.mkv.report.json").read_text())
        assert [s["computed"] for s in report["segments"]] == \
            [r["computed"] for k, r in sorted(segs.items()) if k[0] == job_id]
    jobs = _jobs(out)
    assert {n: j["status"] for n, j in jobs.items()} == {"a.mp4": "done", "b.mp4": "done"}
    for name in ("a", "b"):
        assert _packets(out / f"{name}.mkv") == _packets(refs[name])
    leftovers = {p.name for p in out.iterdir()}
    assert leftovers == {DB_NAME, ".vidrestore-batch.lock", ".vidrestore-work",
                         *(f"{n}.mkv{x}" for n in "ab" for x in ("", ".sha256", ".framemd5",
                                                                 ".report.json"))} \
        | {p.name for p in out.glob(DB_NAME + "-*")}
    assert not any((out / ".vidrestore-work").iterdir())


# -- failures, changes, retries, status ---------------------------------------------------------
def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["batch", *args], catch_exceptions=False)


def test_bad_changed_and_tampered_inputs(tmp_path: Path, weights: Path) -> None:
    # what is tested here is the bookkeeping: pictures without faces keep the network idle
    texture = _texture(5)
    good = _clip(tmp_path / "good.mp4", texture, 4, audio=False)
    _clip(tmp_path / "other.mp4", texture[::-1].copy(), 4, audio=False)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])  # cut short
    listing = tmp_path / "reels.txt"
    listing.write_text("good.mp4\nbad.mp4\nother.mp4\n")
    out = tmp_path / "out"
    args = (f"@{listing}", "--out", str(out), "--weights", str(weights), *CLI_OPTIONS,
            "--retries", "1")
    first = _cli(*args)
    assert first.exit_code == 1, first.output
    jobs = _jobs(out)
    assert {n: j["status"] for n, j in jobs.items()} == \
        {"good.mp4": "done", "bad.mp4": "failed", "other.mp4": "done"}
    assert jobs["bad.mp4"]["error_class"] == "SourceError"
    assert "bad.mp4" in jobs["bad.mp4"]["error_message"]
    assert jobs["bad.mp4"]["failures"] == 2 and jobs["bad.mp4"]["attempts"] == 2  # 1 retry
    status = json.loads(_cli("status", str(out), "--json").output)
    assert status["counts"] == {"pending": 0, "running": 0, "done": 2, "failed": 1}
    table = _cli("status", str(out)).output
    assert "SourceError" in table and "2 done, 1 failed" in table
    # out of retries: the bad input is skipped, the good ones are verified and skipped
    again = _cli(*args)
    assert again.exit_code == 1 and "skip" in again.output
    assert {n: j["attempts"] for n, j in _jobs(out).items()} == \
        {"good.mp4": 1, "bad.mp4": 2, "other.mp4": 1}
    # a changed input is redone, and only it; --dry-run says so without doing it
    _clip(good, texture[:, ::-1].copy(), 4, audio=False)
    old_hash = _jobs(out)["good.mp4"]["output_hash"]
    dry = _cli(*args, "--dry-run", "--json")
    actions = {Path(d["source"]).name: (d["action"], d["reason"]) for d in json.loads(dry.output)}
    assert actions == {"good.mp4": ("redo", "input changed"),
                       "bad.mp4": ("skip", actions["bad.mp4"][1]),
                       "other.mp4": ("skip", "done, output verified")}
    assert _jobs(out)["good.mp4"]["attempts"] == 1
    _cli(*args)
    jobs = _jobs(out)
    assert (jobs["good.mp4"]["attempts"], jobs["other.mp4"]["attempts"]) == (2, 1)
    assert jobs["good.mp4"]["output_hash"] != old_hash
    # an output that no longer matches its hash is redone
    with open(out / "other.mkv", "ab") as fh:
        fh.write(b"\0")
    _cli(*args)
    jobs = _jobs(out)
    assert (jobs["good.mp4"]["attempts"], jobs["other.mp4"]["attempts"]) == (2, 2)
    assert subprocess.run(["sha256sum", "-c", "other.mkv.sha256"], cwd=out).returncode == 0


# -- interlaced, 10-bit ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def interlaced10(tmp_path_factory: pytest.TempPathFactory, photo: np.ndarray) -> Path:
    """10-bit 4:2:2 FFV1, top field first, whose two fields differ (panning faces)."""
    folder = tmp_path_factory.mktemp("il")
    fields = pan_frames(photo, 6, (W, H), step=(0.8, 0.0))
    for i in range(3):
        img = fields[2 * i].copy()
        img[1::2] = fields[2 * i + 1][1::2]
        cv2.imwrite(str(folder / f"f{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    dst = folder / "il10.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-framerate", "25", "-i", str(folder / "f%03d.png"),
                    "-vf", "setfield=tff", "-c:v", "ffv1", "-pix_fmt", "yuv422p10le",
                    "-field_order", "tt", str(dst)], check=True)
    return dst


def _ffprobe_video(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_streams",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["streams"][0]


@pytest.mark.parametrize("mode, order", [("fields", "tt"), ("bwdif", None)])
def test_interlaced_10bit_segments_equal_one_pass(tmp_path: Path, interlaced10: Path,
                                                  worker: SegmentWorker, weights: Path,
                                                  mode: str, order: str | None) -> None:
    restore, faces = _options(weights)
    outs = {}
    for seg in (0, 1):
        config = BatchConfig(tmp_path / f"s{seg}", restore=restore, faces=faces,
                             batch=BatchOptions(segment_frames=seg, deinterlace=mode))
        assert run_batch([interlaced10], config, worker=worker).ok
        outs[seg] = tmp_path / f"s{seg}" / "il10.mkv"
    assert _packets(outs[1]) == _packets(outs[0])
    meta = _ffprobe_video(outs[1])
    # field order kept when restoring per field; untagged (not interlaced) after bwdif
    assert (meta["pix_fmt"], meta.get("field_order")) == ("yuv422p10le", order)
    report = json.loads(outs[1].with_name("il10.mkv.report.json").read_text())
    assert report["video"]["field_handling"] == mode and report["tracks"]["faces_restored"] > 0
    assert report["output"]["frames"] == 3


# -- image sequences, 16-bit, black and white --------------------------------------------------
def test_gray_16bit_sequence_to_dpx(tmp_path: Path, photo: np.ndarray, worker: SegmentWorker,
                                    weights: Path) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257 + 77  # low bits set
    scan = tmp_path / "reel7"
    scan.mkdir()
    frames = pan_frames(np.repeat(gray[:, :, None], 3, axis=2), 4, (W, H), step=(0.5, 0.2))
    for i, f in enumerate(frames):
        cv2.imwrite(str(scan / f"{i:05d}.png"), f)  # 16-bit PNG, R = G = B
    restore, faces = _options(weights)
    out = tmp_path / "out"
    config = BatchConfig(out, restore=restore, faces=faces,
                         batch=BatchOptions(codec="dpx", fps="24", segment_frames=2))
    assert run_batch([scan], config, worker=worker).ok
    images = sorted((out / "reel7").iterdir())
    assert [p.name for p in images][:2] == ["reel7_0000001.dpx", "reel7_0000002.dpx"]
    assert len(images) == 4
    changed = 0
    for src, dst in zip(frames, images, strict=True):
        with av.open(str(dst)) as c:
            pic = next(c.decode(video=0)).to_ndarray(format="rgb48le")
        assert pic.dtype == np.uint16
        assert np.array_equal(pic[..., 0], pic[..., 1]) and np.array_equal(pic[..., 1],
                                                                           pic[..., 2])
        same = np.all(pic == src, axis=2)
        assert same.mean() > 0.5  # away from faces the 16-bit scan is kept exactly
        changed += int((~same).sum())
    assert changed > 0  # and the faces were restored (in gray)
    sums = (out / "reel7.sha256").read_text().splitlines()
    assert len(sums) == 4 and sums[0].endswith("reel7/reel7_0000001.dpx")
    assert subprocess.run(["sha256sum", "-c", "reel7.sha256"], cwd=out).returncode == 0


# -- other output codecs -----------------------------------------------------------------------
@pytest.mark.parametrize("codec, writer", [
    ("prores-4444", WriterOptions(codec="prores", prores_profile="4444")),  # joined by copy
    # segments in the encoder's format, encoded once at the end; lossless (crf 0), so the
    # decoded output shows exactly what the encoder was given (x264's bitstream itself is not
    # reproducible from run to run on every CPU)
    ("h264", WriterOptions(codec="h264", crf=0)),
])
def test_other_codecs_segments_equal_one_pass(tmp_path: Path, worker: SegmentWorker,
                                              weights: Path, codec: str,
                                              writer: WriterOptions) -> None:
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.pipeline import Restorer

    texture = _texture(7)
    src = _clip(tmp_path / "tex.mp4", texture, 7, audio=True)  # no face: the codec is tested
    restore, faces = _options(weights)
    suffix = ".mov" if codec.startswith("prores") else ".mp4"
    ref = tmp_path / f"ref{suffix}"
    restore_video(src, ref, restore, faces=faces, writer=writer, progress=False,
                  restorer=Restorer(restore, faces, model=worker.model,
                                    detector=worker.detector))
    config = BatchConfig(tmp_path / "out", restore=restore, faces=faces, writer=writer,
                         batch=BatchOptions(codec=codec, segment_frames=3))
    assert run_batch([src], config, worker=worker).ok
    got = tmp_path / "out" / f"tex{suffix}"
    if codec == "h264":
        assert _packets(got)["audio"] == _packets(ref)["audio"]
        assert _pictures(got) == _pictures(ref)
    else:
        assert _packets(got) == _packets(ref)
    meta = _ffprobe_video(got)
    if codec == "prores-4444":
        assert (meta["codec_name"], meta["pix_fmt"]) == ("prores", "yuv444p10le")


def test_upscaled_segments_equal_one_pass(tmp_path: Path, reel: Path, worker: SegmentWorker,
                                          weights: Path) -> None:
    """--upscale 2 in a batch: segments (tracks and temporal state carried across seams by
    snapshots) join to the single pass's output, twice the size."""
    import dataclasses

    from vidrestore.restore.api import restore_video
    from vidrestore.restore.pipeline import Restorer

    restore, faces = _options(weights)
    restore = dataclasses.replace(restore, upscale=2)
    ref = tmp_path / "ref.mkv"
    restore_video(reel, ref, restore, faces=faces, writer=WriterOptions(codec="ffv1"),
                  progress=False, restorer=Restorer(restore, faces, model=worker.model,
                                                    detector=worker.detector))
    config = BatchConfig(tmp_path / "out", restore=restore, faces=faces,
                         batch=BatchOptions(segment_frames=3))
    assert run_batch([reel], config, worker=worker).ok
    got = tmp_path / "out" / "reel.mkv"
    assert _packets(got) == _packets(ref)
    assert (_ffprobe_video(got)["width"], _ffprobe_video(got)["height"]) == (2 * W, 2 * H)


# -- the batch folder and the command line --------------------------------------------------------
def test_outputs_never_replace_inputs_or_strangers(tmp_path: Path, weights: Path) -> None:
    """A batch written into its own source folder, or over a file of the user's, takes a free
    name; its outputs are not read back as inputs on the next run."""
    texture = _texture(3)
    reels = tmp_path / "reels"
    reels.mkdir()
    src = _clip(reels / "reel.mkv", texture, 3, audio=False, codec="ffv1")
    before = src.read_bytes()
    (reels / "notes.mkv").write_bytes(b"precious")  # not a video: fails as its own job
    res = _cli(str(reels), "--out", str(reels), "--weights", str(weights), *CLI_OPTIONS)
    assert src.read_bytes() == before and (reels / "notes.mkv").read_bytes() == b"precious"
    jobs = _jobs(reels)
    assert Path(jobs["reel.mkv"]["output"]).name == "reel-2.mkv", res.output
    assert jobs["reel.mkv"]["status"] == "done" and (reels / "reel-2.mkv").is_file()
    assert Path(jobs["notes.mkv"]["output"]).name == "notes-2.mkv"
    # a folder inside the scanned one: its outputs are not inputs the next time
    inner = reels / "restored"
    for _ in range(2):
        again = _cli(str(reels), "--out", str(inner), "--weights", str(weights), *CLI_OPTIONS)
        assert set(_jobs(inner)) == {"reel.mkv", "reel-2.mkv", "notes.mkv"}, again.output
    assert src.read_bytes() == before


def test_cli_image_sequence_codecs_and_bad_values(tmp_path: Path, photo: np.ndarray,
                                                  weights: Path) -> None:
    scan = tmp_path / "reel3"
    scan.mkdir()
    for i, f in enumerate(pan_frames(photo, 3, (W, H))):
        cv2.imwrite(str(scan / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xef\xbb\xbfreel3\r\n")  # saved with a byte-order mark, CRLF
    out = tmp_path / "out"
    res = _cli(f"@{listing}", "--out", str(out), "--fps", "24", "--codec", "png",
               "--weights", str(weights), *CLI_OPTIONS)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "reel3").iterdir())[0] == "reel3_0000001.png"
    for bad in (["--fps", "24/0"], ["--fps", "abc"], ["--fps", "-24"]):
        other = tmp_path / "other"
        res = CliRunner().invoke(cli, ["batch", str(scan), "--out", str(other), *bad])
        assert res.exit_code == 2 and "fps" in res.output and not other.exists(), res.output


def test_a_finished_job_survives_its_input_going_missing(tmp_path: Path, weights: Path) -> None:
    texture = _texture(9)
    src = _clip(tmp_path / "reel.mp4", texture, 3, audio=False)
    out = tmp_path / "out"
    args = (str(src), "--out", str(out), "--weights", str(weights), *CLI_OPTIONS)
    assert _cli(*args).exit_code == 0
    recorded = _jobs(out)["reel.mp4"]["output_hash"]
    src.rename(tmp_path / "away.mp4")  # an unmounted share, a renamed folder
    res = _cli(*args)
    assert res.exit_code == 0 and "input unavailable" in res.output, res.output
    job = _jobs(out)["reel.mp4"]
    assert (job["status"], job["output_hash"]) == ("done", recorded)
    (tmp_path / "away.mp4").rename(src)
    res = _cli(*args)
    assert res.exit_code == 0 and "done, output verified" in res.output, res.output


def test_deleted_fixity_sidecars_are_written_again(tmp_path: Path, weights: Path) -> None:
    texture = _texture(17)
    src = _clip(tmp_path / "reel.mp4", texture, 3, audio=False)
    out = tmp_path / "out"
    args = (str(src), "--out", str(out), "--weights", str(weights), *CLI_OPTIONS)
    assert _cli(*args).exit_code == 0
    sidecars = [out / "reel.mkv.sha256", out / "reel.mkv.framemd5"]
    before = [p.read_text() for p in sidecars]
    for p in sidecars:
        p.unlink()
    res = _cli(*args)
    assert res.exit_code == 0 and "sidecars written again" in res.output, res.output
    assert [p.read_text() for p in sidecars] == before


def test_unusable_batch_folders_say_why_in_one_line(tmp_path: Path, weights: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / DB_NAME).write_text("not a database\n")
    clip = tmp_path / "none.mp4"
    for args in (["status", str(broken)],
                 [str(clip), "--out", str(broken), "--weights", str(weights)],
                 [str(clip), "--out", str(clip / "sub"), "--weights", str(weights)]):
        clip.write_bytes(b"x")
        res = CliRunner().invoke(cli, ["batch", *args])
        assert res.exit_code not in (0, 1) and isinstance(res.exception, SystemExit), res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
    assert (broken / DB_NAME).read_text() == "not a database\n"


def test_options_that_do_not_shape_outputs_do_not_redo_jobs(tmp_path: Path, weights: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    texture = _texture(11)
    src = _clip(tmp_path / "reel.mp4", texture, 2, audio=False)
    ckpt = tmp_path / "ckpt.pth"
    ckpt.write_bytes(weights.read_bytes())
    out = tmp_path / "out"
    common = (str(src), "--out", str(out), "--lookahead", "2", "--window", "2")
    assert _cli(*common, "--weights", str(ckpt)).exit_code == 0  # --device auto
    picked = str(resolve_device("auto"))
    monkeypatch.chdir(tmp_path)
    for same in (["--weights", "./ckpt.pth"],  # the same file, spelled anew
                 ["--weights", str(ckpt), "--batch-size", "4"],
                 ["--weights", str(ckpt), "--device", picked]):  # what auto picks
        res = _cli(*common, *same, "--dry-run")
        assert res.output.startswith("skip"), (same, res.output)
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")  # other content at the same path
    res = _cli(*common, "--weights", str(ckpt), "--dry-run")
    assert res.output.startswith("redo") and "options changed" in res.output, res.output


def test_a_moved_batch_folder_keeps_its_finished_and_unfinished_jobs(tmp_path: Path,
                                                                     weights: Path) -> None:
    texture = _texture(13)
    done_src = _clip(tmp_path / "done.mp4", texture, 3, audio=False)
    bad_src = tmp_path / "later.mp4"
    bad_src.write_bytes(b"not yet")  # fails now, is fixed after the move
    first = tmp_path / "first"
    common = ("--weights", str(weights), *CLI_OPTIONS, "--retries", "0")
    _cli(str(done_src), str(bad_src), "--out", str(first), *common)
    moved = tmp_path / "moved"
    first.rename(moved)
    _clip(bad_src, texture[::-1].copy(), 3, audio=False)
    res = _cli(str(done_src), str(bad_src), "--out", str(moved), *common)
    assert res.exit_code == 0, res.output
    assert "skip" in res.output and "done, output verified" in res.output
    jobs = _jobs(moved)
    assert {n: (j["status"], Path(j["output"]).parent) for n, j in jobs.items()} == \
        {"done.mp4": ("done", moved), "later.mp4": ("done", moved)}
    assert not first.exists() and (moved / "later.mkv").is_file()


# -- a lost database, a job that fails at the end -------------------------------------------------
def test_a_lost_database_takes_back_verified_outputs(tmp_path: Path, reel: Path,
                                                     worker: SegmentWorker, weights: Path
                                                     ) -> None:
    restore, faces = _options(weights)
    out = tmp_path / "out"
    config = BatchConfig(out, restore=restore, faces=faces)
    first = run_batch([reel], config, worker=worker)
    assert first.ok and first.ran == 1
    made = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and
            p.name.startswith("reel")}
    for p in out.glob(DB_NAME + "*"):
        p.unlink()
    said: list[str] = []
    again = run_batch([reel], config, worker=worker, events=said.append)
    assert again.ok and again.ran == 0, said
    assert any(m.startswith("adopt ") for m in said), said
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and
            p.name.startswith("reel")} == made  # nothing redone, no reel-2.mkv
    assert again.jobs[0].status == "done" and again.jobs[0].frames == 8
    # other options: the output is not taken back (it is not what was asked for)
    other = BatchConfig(out, restore=dataclasses.replace(restore, fidelity=0.9), faces=faces)
    for p in out.glob(DB_NAME + "*"):
        p.unlink()
    assert [d.action for d in dry_run([reel], other)] == ["new"]


def test_a_job_failing_at_the_end_leaves_no_output(tmp_path: Path, reel: Path,
                                                   worker: SegmentWorker, weights: Path) -> None:
    src = tmp_path / "src.mp4"
    shutil.copy(reel, src)
    restore, faces = _options(weights)
    out = tmp_path / "out"

    def touch(message: str) -> None:  # the source is changed while it is being restored
        if "segment 0" in message:
            st = src.stat()
            os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    result = run_batch([src], BatchConfig(out, restore=restore, faces=faces,
                                          batch=BatchOptions(retries=0)),
                       worker=worker, events=touch)
    assert not result.ok
    assert "changed while it was being restored" in (result.jobs[0].error_message or "")
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if n.startswith("src")], left  # no output, sidecar or report
