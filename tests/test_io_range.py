"""``start``/``end`` ranges: the right frames, re-based to 0, with the matching audio and subs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from iomedia import ffprobe, get_clip, passthrough, read_all, timed, video_times

from vidrestore.errors import UsageError
from vidrestore.io import VideoReader


def test_range_keeps_its_frames_and_audio(tmp_path_factory: pytest.TempPathFactory,
                                          tmp_path: Path) -> None:
    src, out = get_clip(tmp_path_factory, "cfr_mov"), tmp_path / "cut.mov"
    passthrough(src, out, start=0.3, end="0:00.7", preset="ultrafast")
    step = Fraction(1001, 30000)
    first = 9  # the first frame at or after 0.3 s is 9 * 1001/30000 = 0.3003 s
    times = video_times(out)
    assert times == [k * step for k in range(12)]  # frames 9..20, re-based to 0
    for sel in ("a:0", "a:1"):
        src_packets, out_packets = timed(src, sel), timed(out, sel)
        offset = first * step
        kept = [p for p in src_packets if offset <= p[0] < Fraction(7, 10)]
        assert [p[2] for p in out_packets] == [p[2] for p in kept], sel  # same payloads
        for (t_out, d_out, _), (t_src, d_src, _) in zip(out_packets, kept, strict=True):
            assert abs(t_out - (t_src - offset)) <= Fraction(1, 44100)
            # ffprobe 5 shortens a track's last packet by the track's start delay; FFmpeg 8
            # (PyAV) reads it whole, so only the earlier durations are compared here.
            assert d_out == d_src or (t_out, d_out) == out_packets[-1][:2]


def test_range_cuts_subtitles_and_chapters(tmp_path_factory: pytest.TempPathFactory,
                                           tmp_path: Path) -> None:
    src, out = get_clip(tmp_path_factory, "odd_mkv"), tmp_path / "cut.mkv"
    passthrough(src, out, start=0.2, end=0.6, preset="ultrafast")
    assert video_times(out) == [Fraction(k, 25) for k in range(10)]
    # ffmpeg wrote the source with everything but the chapters 23 ms late (AAC priming), so
    # the cut starts at 0.223 s on the file's clock and ends at 0.623 s.
    lead = video_times(src)[0]
    assert lead == Fraction(23, 1000)
    subs = timed(out, "s:0")
    assert [(t, d) for t, d, _ in subs] == [(Fraction(3, 10), Fraction(3, 10))]  # "World"
    assert subs[0][2] == timed(src, "s:0")[1][2]
    chapters = ffprobe(out)["chapters"]
    shift = Fraction(1, 5) + lead
    assert [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in chapters] == [
        ("0.000000", f"{float(Fraction(2, 5) - shift):.6f}", "One"),
        (f"{float(Fraction(2, 5) - shift):.6f}", "0.400000", "Two")]


def test_start_after_a_keyframe_seeks_and_matches_a_full_read(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    src = get_clip(tmp_path_factory, "faststart_mp4")  # keyframe every 10 frames
    full = read_all(src)
    with VideoReader(src, start=1.0, end="45f") as reader:
        assert reader.expected_frames == 20
        part = list(reader)
    inside = [f for f in full if 1 <= f.time < 45 / 25]
    assert [f.pts for f in part] == [f.pts for f in inside] and len(part) == 20
    for a, b in zip(inside, part, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
    assert [f.index for f in part] == list(range(20))


def test_bad_ranges_are_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    src = get_clip(tmp_path_factory, "faststart_mp4")
    with pytest.raises(UsageError, match="not after start"):
        VideoReader(src, start=1.5, end=1.0)
    with pytest.raises(UsageError, match="past the end"):
        VideoReader(src, start="0:05")
    with pytest.raises(UsageError, match="not a time"):
        VideoReader(src, end="soon")
