"""Image sequences in and out: order, timing from the user's fps, 16-bit kept exactly."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from iomedia import ffprobe, get_clip, need_ffmpeg, passthrough, psnr, read_all, run, stream

from vidrestore.errors import OutputError, SourceError
from vidrestore.io import VideoReader, VideoWriter, WriterOptions


@pytest.fixture(scope="module")
def deep_pngs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 16-bit PNGs written by the ffmpeg program."""
    need_ffmpeg()
    folder = tmp_path_factory.mktemp("pngs")
    run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=96x64:r=24:d=0.25",
        "-pix_fmt", "rgb48be", str(folder / "frame_%04d.png"))
    return folder


def _cv2_rgb(path: Path) -> np.ndarray:
    """An image as OpenCV (an independent decoder) reads it, in RGB order."""
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1]


def test_reads_16_bit_pngs_exactly_with_user_fps(deep_pngs: Path) -> None:
    frames = read_all(deep_pngs / "frame_%04d.png", fps="24000/1001")
    assert len(frames) == 6
    assert [f.pts for f in frames] == list(range(6))
    assert frames[0].time_base == Fraction(1001, 24000)
    for frame, path in zip(frames, sorted(deep_pngs.glob("*.png")), strict=True):
        assert frame.pixels.dtype == np.uint16
        assert np.array_equal(frame.pixels, _cv2_rgb(path))
    same = read_all(deep_pngs, fps=24)  # the folder itself
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(frames, same, strict=True))


@pytest.mark.parametrize("suffix", [".png", ".tif", ".dpx"])
def test_writes_16_bit_images_losslessly(deep_pngs: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / "restored" / f"img_%03d{suffix}"
    with VideoReader(deep_pngs / "frame_%04d.png", fps=24) as reader, \
            VideoWriter(out, source=reader.info) as writer:
        frames = []
        for frame in reader:
            writer.write(frame)
            frames.append(frame)
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == [f"img_{n:03d}{suffix}" for n in range(1, 7)]
    again = read_all(out, fps=24)
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(frames, again, strict=True))
    if suffix != ".dpx":  # OpenCV cannot read DPX
        assert np.array_equal(_cv2_rgb(out.parent / names[0]), frames[0].pixels)


def test_folder_order_is_natural(tmp_path: Path) -> None:
    for n in range(1, 12):  # shot10 and shot11 come after shot9, not after shot1
        cv2.imwrite(str(tmp_path / f"shot{n}.png"), np.full((8, 8, 3), 10 * n, np.uint8))
    frames = read_all(tmp_path, fps=10)
    assert [int(f.pixels[0, 0, 0]) for f in frames] == [10 * n for n in range(1, 12)]


def test_a_hole_in_the_numbering_is_refused(tmp_path: Path) -> None:
    for n in (7, 8, 10, 11, 13):
        cv2.imwrite(str(tmp_path / f"reel_{n:05d}.png"), np.zeros((8, 8, 3), np.uint8))
    for source in (tmp_path, tmp_path / "reel_%05d.png"):
        with pytest.raises(SourceError, match=r"2 frame\(s\) missing .* after reel_00008.png"):
            VideoReader(source, fps=24)
    (tmp_path / "reel_00009.png").write_bytes((tmp_path / "reel_00008.png").read_bytes())
    (tmp_path / "reel_00012.png").write_bytes((tmp_path / "reel_00008.png").read_bytes())
    assert len(read_all(tmp_path, fps=24)) == 7  # numbered from 7: no hole


def test_mixed_sizes_and_empty_folders_fail(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        VideoReader(tmp_path, fps=10)
    cv2.imwrite(str(tmp_path / "a1.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a2.png"), np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(SourceError, match=r"a2\.png: is 10x8"):
        read_all(tmp_path, fps=10)


def test_sequence_to_ffv1_is_bit_exact(deep_pngs: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.mkv"
    with VideoReader(deep_pngs / "frame_%04d.png", fps="30000/1001") as reader, \
            VideoWriter(out, source=reader.info, options=WriterOptions(codec="ffv1")) as writer:
        frames = []
        for frame in reader:
            writer.write(frame)
            frames.append(frame)
    video = stream(ffprobe(out), "video")
    assert (video["avg_frame_rate"], video["pix_fmt"]) == ("30000/1001", "gbrp16le")
    again = read_all(out)  # planar RGB at 16 bits: the archive holds the images exactly
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(frames, again, strict=True))


def test_sequence_to_h264_keeps_ten_bits(deep_pngs: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    passthrough(deep_pngs / "frame_%04d.png", out, fps=24, preset="ultrafast")
    video = stream(ffprobe(out), "video")
    assert (video["pix_fmt"], video["color_space"], video["nb_frames"]) == (
        "yuv444p10le", "bt709", "6")


def test_video_to_sequence_reports_the_audio(tmp_path_factory: pytest.TempPathFactory,
                                             tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    src = get_clip(tmp_path_factory, "rot_mp4")
    with caplog.at_level("WARNING"):
        report = passthrough(src, tmp_path / "frames" / "f_%04d.png")
    assert report.frames == 15 and len(list((tmp_path / "frames").iterdir())) == 15
    assert [n.kind for n in report.not_carried] == ["audio"]
    assert any("audio" in r.getMessage() and "pictures only" in r.getMessage()
               for r in caplog.records)  # said, not only returned
    with caplog.at_level("WARNING"):
        passthrough(src, tmp_path / "ffv1" / "f_%04d.png", codec="ffv1")
    assert any("--video-codec not used" in r.getMessage() for r in caplog.records)
    # written upright, as the ffmpeg program shows the video (it applies the rotation)
    upright = tmp_path / "ffmpeg.png"
    run("ffmpeg", "-v", "error", "-i", str(src), "-frames:v", "1", "-pix_fmt", "rgb24",
        str(upright))
    ours, theirs = _cv2_rgb(tmp_path / "frames" / "f_0001.png"), _cv2_rgb(upright)
    assert ours.shape == theirs.shape == (160, 96, 3)
    # ffmpeg's faster YUV->RGB rounds differently; the half-turned picture is far off
    assert psnr(ours, theirs) > 30 > psnr(ours, np.rot90(theirs, 2)) + 5


def test_existing_sequence_needs_overwrite(deep_pngs: Path, tmp_path: Path) -> None:
    out = tmp_path / "seq"
    out.mkdir()
    (out / "frame_000009.png").write_bytes(b"old")
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="already exists"):
        passthrough(deep_pngs / "frame_%04d.png", out, fps=24)
    assert (out / "frame_000009.png").read_bytes() == b"old"
    passthrough(deep_pngs / "frame_%04d.png", out, fps=24, overwrite=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{n:06d}.png" for n in range(1, 7)] + ["notes.txt"]
    with pytest.raises(OutputError, match="input sequence's folder"):
        passthrough(out, out / "again_%03d.png", fps=24)
