"""Batch building blocks on real files: sources, job database, fixity, fields, stream-copy join.

None of these needs the network; the end-to-end batch runs are in test_batch_runs.py.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from synth import write_clip

from vidrestore.batch.fixity import (
    frame_md5,
    output_digest,
    video_framemd5,
    write_fixity,
)
from vidrestore.batch.interlace import (
    Weaver,
    bob,
    deinterlace,
    resolve_mode,
    split_fields,
)
from vidrestore.batch.jobs import JobDB, SegmentRecord
from vidrestore.batch.join import check_chain, remux
from vidrestore.batch.plan import video_only
from vidrestore.batch.sources import Source, content_hash, expand_sources, fingerprint
from vidrestore.errors import OutputError, UsageError
from vidrestore.io import VideoReader, VideoWriter, WriterOptions
from vidrestore.io.frame import Frame


def _ffmpeg() -> None:
    if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
        pytest.skip("the ffmpeg program is needed to check against it")


def _noise(n: int, size: tuple[int, int] = (96, 64), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (h, w, 3)).astype(np.float32)
    return [np.clip(base + i * 3, 0, 255).astype(np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames of 96x64 H.264 with an AAC tone (whose priming starts before time zero)."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", _noise(12), audio=True)


# -- sources -----------------------------------------------------------------------------------
def test_sources_expand_files_folders_sequences_and_lists(tmp_path: Path) -> None:
    reels = tmp_path / "reels"
    (reels / "scan_a").mkdir(parents=True)
    (reels / "b").mkdir()
    for name in ("r2.mov", "r1.mp4", "notes.doc"):
        (reels / name).write_bytes(b"x")
    for i in range(3):
        (reels / "scan_a" / f"f{i:04d}.dpx").write_bytes(b"img")
    (reels / "b" / "r3.mkv").write_bytes(b"x")
    listing = tmp_path / "lists" / "batch.txt"
    listing.parent.mkdir()
    listing.write_text("# reels for today\n\n../reels/r1.mp4\n../elsewhere/missing.mov\n")
    got = expand_sources([str(reels), f"@{listing}", str(reels / "scan_a" / "f%04d.dpx")])
    rel = [(s.path.relative_to(tmp_path).as_posix(), s.kind) for s in got]
    assert rel == [
        ("reels/b/r3.mkv", "video"),  # folders in name order, recursively
        ("reels/r1.mp4", "video"),
        ("reels/r2.mov", "video"),
        ("reels/scan_a", "sequence"),  # a folder of images is one source
        ("elsewhere/missing.mov", "video"),  # listed again: r1.mp4 only once; missing kept
        ("reels/scan_a/f%04d.dpx", "sequence"),
    ]
    assert [s.name for s in got] == ["r3", "r1", "r2", "scan_a", "missing", "scan_a"]
    empty = tmp_path / "lists" / "empty.txt"
    empty.write_text("# nothing today\n")
    with pytest.raises(UsageError, match="no sources"):
        expand_sources([str(empty)])


def test_sequence_fingerprint_and_hash_follow_every_image(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.png").write_bytes(bytes([i]) * 10)
    src = Source(folder, "sequence")
    fp, digest = fingerprint(src), content_hash(src)
    assert fp.size == 30
    (folder / "f1.png").write_bytes(bytes([9]) * 10)  # same size, other content
    assert content_hash(src) != digest
    (folder / "f1.png").write_bytes(bytes([1]) * 10)
    assert content_hash(src) == digest
    (folder / "f3.png").write_bytes(b"")
    assert content_hash(src) != digest  # a new (even empty) image changes the listing


# -- job database ------------------------------------------------------------------------------
def test_job_database_records_and_survives_reopening(tmp_path: Path) -> None:
    with JobDB(tmp_path) as db:
        job = db.add(source="/in/a.mov", kind="video", output=str(tmp_path / "a.mkv"),
                     options="{}", options_hash="h")
        db.set_input(job.id, size=10, mtime_ns=5, source_hash=None)
        db.start(job.id, worker="w")
        db.set_segment_frames(job.id, 8)
        db.segment_begin(job.id, 0, 0, "w")
        db.segment_done(SegmentRecord(job.id, 0, 0, frames=8, last_pts=7, out_first=0,
                                      out_frames=4, path=str(tmp_path / "p"), hash="x",
                                      status="done"))
        db.segment_begin(job.id, 1, 8, "w")  # then the process dies
        with pytest.raises(sqlite3.IntegrityError):
            db.add(source="/in/b.mov", kind="video", output=str(tmp_path / "a.mkv"),
                   options="{}", options_hash="h")  # two inputs never share an output
    with JobDB(tmp_path) as db:
        assert db.requeue_interrupted() == 1
        job = db.job(1)
        assert (job.status, job.attempts, job.size, job.segment_frames) == ("pending", 1, 10, 8)
        segs = db.segments(1)
        assert [(s.idx, s.status, s.computed) for s in segs] == [(0, "done", 1), (1, "running", 1)]
        db.segment_begin(1, 1, 8, "w")
        assert db.segments(1)[1].computed == 2
        db.fail(1, OSError("disk\nfull"))
        job = db.job(1)
        assert (job.status, job.failures, job.error_class, job.error_message) == \
            ("failed", 1, "OSError", "disk full")
    with pytest.raises(UsageError, match="no batch here"):
        JobDB(tmp_path / "elsewhere", create=False)


# -- fixity ------------------------------------------------------------------------------------
def test_framemd5_matches_ffmpeg_and_sha256_sidecar_verifies(tmp_path: Path) -> None:
    _ffmpeg()
    src = tmp_path / "ten.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=66x38:r=25:d=0.2",
                    "-c:v", "ffv1", "-pix_fmt", "yuv422p10le", str(src)], check=True)
    fix = write_fixity(src)
    ours = [line.split(",")[-1].strip() for line in fix.framemd5_sidecar.read_text().splitlines()
            if not line.startswith("#")]
    ref = subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-map", "0:v", "-f",
                          "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    theirs = [line.split(",")[-1].strip() for line in ref.splitlines()
              if not line.startswith("#")]
    assert ours == theirs and len(ours) == 5
    ok = subprocess.run(["sha256sum", "-c", fix.sha256_sidecar.name], cwd=tmp_path,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    again = write_fixity(src, framemd5=False)  # the earlier listing must not stay beside it
    assert again.framemd5_sidecar is None and not fix.framemd5_sidecar.exists()
    assert fix.digest == output_digest(src)


def test_frame_md5_ignores_line_padding() -> None:
    frame = av.VideoFrame.from_ndarray(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3),
                                       format="rgb24")
    assert frame.planes[0].line_size > 21  # padded rows
    md5, size = frame_md5(frame)
    import hashlib

    assert (md5, size) == (hashlib.md5(frame.to_ndarray().tobytes()).hexdigest(), 105)


# -- fields ------------------------------------------------------------------------------------
def test_fields_split_and_weave_back_bit_exact() -> None:
    rng = np.random.default_rng(1)
    frames = [Frame(i, 3600 * i, Fraction(1, 90000),
                    rng.integers(0, 65535, (37, 20, 3)).astype(np.uint16)) for i in range(5)]
    for top_first in (True, False):
        fields = list(split_fields(frames, top_first=top_first))
        assert [f.index for f in fields] == list(range(10))
        assert all(f.pixels.shape == (37, 20, 3) for f in fields)
        parity = 0 if top_first else 1
        np.testing.assert_array_equal(fields[0].pixels[parity::2], frames[0].pixels[parity::2])
        weaver = Weaver(top_first=top_first)
        woven = [w for f in fields if (w := weaver.push(f)) is not None]
        for a, b in zip(woven, frames, strict=True):
            assert (a.index, a.pts, a.time_base) == (b.index, b.pts, b.time_base)
            np.testing.assert_array_equal(a.pixels, b.pixels)
    line = np.arange(6, dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(3, 2) * 10
    np.testing.assert_array_equal(bob(line, 0)[:, 0, 0], [0, 10, 20, 30, 40, 40])
    np.testing.assert_array_equal(bob(line, 1)[:, 0, 0], [10, 10, 20, 30, 40, 50])
    assert resolve_mode("auto", "tt") == "fields" and resolve_mode("auto", "progressive") == "off"


def _combed(n: int) -> list[Frame]:
    """Frames whose two fields show a bar at different places (motion between fields)."""
    out = []
    for i in range(n):
        img = np.full((48, 64, 3), 40, np.uint8)
        img[0::2, 10 + 4 * i : 30 + 4 * i] = 220  # top field
        img[1::2, 12 + 4 * i : 32 + 4 * i] = 220  # bottom field, moved on
        out.append(Frame(i, i, Fraction(1, 25), img))
    return out


def _comb_energy(p: np.ndarray) -> float:
    x = p.astype(np.float32)
    return float(np.abs(x[1:-1] - (x[:-2] + x[2:]) / 2).mean())


@pytest.mark.parametrize("name", ["bwdif", "yadif"])
def test_deinterlace_removes_combing_and_resumes_exactly(name: str) -> None:
    frames = _combed(8)
    whole = list(deinterlace(frames, name, top_first=True))
    assert [f.pts for f in whole] == [f.pts for f in frames]
    assert _comb_energy(whole[4].pixels) < 0.5 * _comb_energy(frames[4].pixels)
    resumed = list(deinterlace(frames[3:], name, top_first=True, drop=1))  # pre-roll 1 frame
    assert [f.index for f in resumed] == [4, 5, 6, 7]
    for a, b in zip(resumed, whole[4:], strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)


# -- joining segments --------------------------------------------------------------------------
def _packets(path: Path) -> list[tuple[str, int | None, int | None, int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(p.stream.type, p.pts, p.dts, p.duration, bytes(p)) for p in c.demux() if p.size]


def test_stream_copy_join_equals_one_pass(clip: Path, tmp_path: Path) -> None:
    with VideoReader(clip) as reader:
        info, frames = reader.info, list(reader)
    opts = WriterOptions(codec="ffv1")
    one = tmp_path / "one.mkv"
    with VideoWriter(one, source=info, options=opts) as w:
        for f in frames:
            w.write(f)
    parts = []
    for k, (a, b) in enumerate([(0, 5), (5, 6), (6, 12)]):
        parts.append(tmp_path / f"seg{k}.mkv")
        with VideoWriter(parts[-1], source=video_only(info), options=opts) as w:
            for f in frames[a:b]:
                w.write(f)
    assert {p[0] for p in _packets(parts[0])} == {"video"}  # segments hold video only
    joined = tmp_path / "joined.mkv"
    assert remux(parts, info, joined, strict=False) == 12
    assert _packets(joined) == _packets(one)  # payloads, pts, durations, audio, interleaving
    assert [f.md5 for f in video_framemd5(joined).frames] == \
        [f.md5 for f in video_framemd5(one).frames]


def test_join_refuses_gaps() -> None:
    segs = [SegmentRecord(1, 0, 0, frames=8, out_first=0, out_frames=5, status="done"),
            SegmentRecord(1, 1, 8, frames=8, out_first=6, out_frames=11, final=True,
                          status="done")]
    with pytest.raises(OutputError, match="does not follow"):
        check_chain(segs)
    segs[1].out_first = 5
    check_chain(segs)
    segs[1].final = False
    with pytest.raises(OutputError, match="final"):
        check_chain(segs)


def test_options_added_later_count_only_when_set(tmp_path: Path) -> None:
    """A batch folder made before an option existed keeps its jobs: the option is left out of
    the job options at its default, and counts as soon as it is set."""
    import json

    from vidrestore.batch.config import ADDED_OPTIONS, BatchConfig
    from vidrestore.faces.options import FaceOptions
    from vidrestore.restore.options import RestoreOptions

    default = BatchConfig(tmp_path, restore=RestoreOptions(device="cpu"))
    data = json.loads(default.options_json())
    for group, names in ADDED_OPTIONS.items():
        assert not set(names) & set(data[group]), (group, names)
    assert "fidelity" in data["restore"] and "smooth" in data["faces"]  # the others all count
    softer = BatchConfig(tmp_path, restore=RestoreOptions(device="cpu", blend=0.6))
    assert json.loads(softer.options_json())["restore"]["blend"] == 0.6
    surer = BatchConfig(tmp_path, restore=RestoreOptions(device="cpu"),
                        faces=FaceOptions(confirm_score=0.95))
    hashes = {default.options_hash(), softer.options_hash(), surer.options_hash()}
    assert len(hashes) == 3
