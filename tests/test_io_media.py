"""Pass-through and a cut of the real clips in ``shared/media`` (skipped when absent)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from iomedia import (
    ffprobe,
    min_psnr_files,
    need_ffmpeg,
    passthrough,
    stream,
    timed,
    video_times,
)

from vidrestore.io import probe


@pytest.mark.parametrize(("name", "frames", "size"), [
    ("vr_face_4.mp4", 199, (700, 700)),
    ("lp_s13.mp4", 103, (720, 1080)),
])
def test_real_clip_passthrough(media_dir: Path, tmp_path: Path, name: str, frames: int,
                               size: tuple[int, int]) -> None:
    need_ffmpeg()
    src, out = media_dir / name, tmp_path / name
    info = probe(src)
    assert (info.width, info.height) == size and info.frame_count == frames
    report = passthrough(src, out, preset="ultrafast")
    assert report.frames == frames and report.not_carried == ()
    assert video_times(out) == video_times(src)
    assert timed(out, "a:0") == timed(src, "a:0")
    a, b = stream(ffprobe(src), "video"), stream(ffprobe(out), "video")
    assert (b["nb_frames"], b["duration"], b["pix_fmt"]) == (a["nb_frames"], a["duration"],
                                                             a["pix_fmt"])
    assert min_psnr_files(src, out) > 38


def test_real_clip_cut(media_dir: Path, tmp_path: Path) -> None:
    need_ffmpeg()
    src, out = media_dir / "lp_s13.mp4", tmp_path / "cut.mp4"
    passthrough(src, out, start="1", end="2.5", preset="ultrafast")
    assert video_times(out) == [Fraction(k, 25) for k in range(38)]  # frames 25..62
    audio = timed(out, "a:0")
    assert audio[0][0] < Fraction(1024, 44100)  # starts within one packet of the picture
    assert abs(audio[-1][0] + audio[-1][1] - Fraction(3, 2)) <= Fraction(1024, 44100)
    kept = [p[2] for p in timed(src, "a:0") if 1 <= p[0] < Fraction(5, 2)]
    assert [p[2] for p in audio] == kept
