"""Bad inputs and outputs fail early with one-line errors, and never leave a partial file."""

from __future__ import annotations

import hashlib
import logging
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from iomedia import get_clip, passthrough, read_all, run

from vidrestore.errors import OutputError, SourceError, UsageError
from vidrestore.io import Frame, VideoReader, VideoWriter, WriterOptions, probe


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def _cut(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return get_clip(tmp_path_factory, "faststart_mp4")


def test_not_a_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(SourceError) as exc:
        VideoReader(text)
    assert str(text) in _one_line(exc)
    with pytest.raises(SourceError, match="no such file"):
        VideoReader(tmp_path / "missing.mp4")


def test_no_video_stream(tmp_path: Path) -> None:
    audio = tmp_path / "tone.m4a"
    run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac", str(audio))
    with pytest.raises(SourceError, match="no video stream") as exc:
        probe(audio)
    assert "audio" in _one_line(exc)


def test_truncated_mp4_is_refused_up_front(clip: Path, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    cut = _cut(clip, tmp_path / "cut.mp4")  # index at the front, half the samples missing
    with pytest.raises(SourceError, match="truncated") as exc:
        VideoReader(cut)
    assert str(cut) in _one_line(exc)
    with caplog.at_level(logging.WARNING):
        frames = read_all(cut, allow_partial=True)
    assert 5 < len(frames) < 50 and "truncated" in caplog.text


def test_truncated_mp4_without_index_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "late_index.mp4"
    run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=128x72:r=25:d=1",
        "-c:v", "libx264", "-preset", "ultrafast", str(whole))
    with pytest.raises(SourceError) as exc:
        VideoReader(_cut(whole, tmp_path / "cut.mp4"))
    assert "cut.mp4" in _one_line(exc)


def test_truncated_mkv_fails_the_write_and_leaves_nothing(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mkv"
    run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=128x72:r=25:d=2",
        "-c:v", "libx264", "-preset", "ultrafast", str(whole))
    cut = _cut(whole, tmp_path / "cut.mkv")
    out = tmp_path / "out" / "restored.mkv"
    out.parent.mkdir()
    with pytest.raises(SourceError, match="truncated") as exc:
        passthrough(cut, out)
    assert "cut.mkv" in _one_line(exc)
    assert list(out.parent.iterdir()) == []


def test_existing_output_is_kept_unless_overwrite(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists") as exc:
        passthrough(clip, out, preset="ultrafast")
    assert str(out) in _one_line(exc)
    assert out.read_bytes() == b"precious"
    passthrough(clip, out, preset="ultrafast", overwrite=True)
    assert probe(out).frame_count == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_output_equal_to_input_is_refused(clip: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(clip.read_bytes())
    (tmp_path / "sub").mkdir()
    os.symlink(src, tmp_path / "link.mp4")
    os.link(src, tmp_path / "hard.mp4")
    before = _digest(src)
    for dst in (src, tmp_path / "sub" / ".." / "in.mp4", tmp_path / "link.mp4",
                tmp_path / "hard.mp4"):
        with pytest.raises(OutputError, match="is the input") as exc:
            passthrough(src, dst, overwrite=True)
        _one_line(exc)
    assert _digest(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.mp4", "in.mp4", "link.mp4", "sub"]


def test_unwritable_destinations(clip: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for dst, words in ((tmp_path / "nowhere" / "out.mp4", "does not exist"),
                       (blocker / "out.mp4", "is not a folder"),
                       (tmp_path / "out.xyz", "cannot write '.xyz' files")):
        with pytest.raises(OutputError, match=words) as exc:
            passthrough(clip, dst)
        _one_line(exc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_folder(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write in folder"):
            passthrough(clip, folder / "out.mp4")
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("error", [RuntimeError("stage failed"), KeyboardInterrupt()])
def test_interrupted_write_leaves_nothing(clip: Path, tmp_path: Path,
                                          error: BaseException) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(type(error)), VideoReader(clip) as reader, \
            VideoWriter(out, source=reader.info,
                        options=WriterOptions(preset="ultrafast")) as writer:
        for frame in reader:
            writer.write(frame)
            if frame.index == 20:
                raise error
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_frames(clip: Path, tmp_path: Path) -> None:
    info = probe(clip)
    tb = info.time_base
    with VideoWriter(tmp_path / "out.mp4", source=info) as writer:
        with pytest.raises(UsageError, match="64x64"):
            writer.write(Frame(0, 0, tb, np.zeros((64, 64, 3), np.uint8)))
        writer.write(Frame(0, 512, tb, np.zeros((72, 128, 3), np.uint8)))
        with pytest.raises(UsageError, match="does not follow"):
            writer.write(Frame(1, 512, tb, np.zeros((72, 128, 3), np.uint8)))
        writer.write(Frame(1, 1024, tb, np.full((72, 128, 3), 9, np.uint16)))
    assert probe(tmp_path / "out.mp4").frame_count == 2


def test_codec_and_container_must_fit(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="mp4 cannot hold prores"):
        VideoWriter(tmp_path / "out.mp4", source=clip, options=WriterOptions(codec="prores"))
    with pytest.raises(UsageError, match="--video-codec"):
        VideoWriter(tmp_path / "out.mkv", source=clip, options=WriterOptions(codec="vp9"))
    with pytest.raises(UsageError, match="crf"):
        VideoWriter(tmp_path / "out.mkv", source=clip, options=WriterOptions(crf=60))
    assert list(tmp_path.iterdir()) == []


def test_reader_arguments(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="image sequences only"):
        VideoReader(clip, fps=25)
    with pytest.raises(UsageError, match="backend"):
        VideoReader(clip, backend="opencv")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="needs its frame rate"):
        VideoReader(tmp_path / "frame_%04d.png")
    with pytest.raises(UsageError, match="fps"):
        VideoReader(tmp_path / "frame_%04d.png", fps="fast")
    assert VideoReader(clip).info.time_base == Fraction(1, 12800)


def test_writer_options_are_checked_when_made() -> None:
    """Bad values fail at once, with the option named, not when the encoder starts."""
    for kwargs, name in (({"pix_fmt": "foo"}, "--pix-fmt"), ({"crf": 99}, "--crf"),
                         ({"encoder_threads": 100000}, "--encoder-threads"),
                         ({"codec": "vp9"}, "--video-codec")):
        with pytest.raises(UsageError, match=name):
            WriterOptions(**kwargs)
    assert WriterOptions(pix_fmt="yuv422p10le").pix_fmt == "yuv422p10le"
