"""Pass-through (decode, re-encode unchanged) keeps timing, picture format and other streams.

Every check reads the output with the ffprobe program, independently of the code under test.
"""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from iomedia import (
    CLIPS,
    ffprobe,
    get_clip,
    min_psnr,
    packets,
    passthrough,
    payloads,
    psnr,
    read_all,
    rotation,
    run,
    stream,
    timed,
    video_times,
)

from vidrestore.errors import StreamCopyError
from vidrestore.io import Frame, VideoReader, VideoWriter, WriterOptions, probe

FAST = {"preset": "ultrafast"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {key: get_clip(tmp_path_factory, key) for key in CLIPS}


def _same_tags(src: dict, out: dict, keys: tuple[str, ...] = ("language", "title")) -> None:
    for key in keys:
        assert src.get("tags", {}).get(key) == out.get("tags", {}).get(key), key


def test_info_matches_ffprobe(clips: dict[str, Path]) -> None:
    for key, path in clips.items():
        facts, info = CLIPS[key], probe(path)
        video = stream(ffprobe(path), "video")
        assert (info.width, info.height) == (facts.width, facts.height), key
        assert info.pix_fmt == video["pix_fmt"] == facts.pix_fmt, key
        assert info.time_base == Fraction(video["time_base"]), key
        assert info.avg_rate == Fraction(video["avg_frame_rate"]), key
        assert info.color_range == video.get("color_range", "unknown"), key
        assert info.color_matrix == video.get("color_space", "unknown"), key
        assert info.rotation == (facts.rotate or 0), key
        kinds = [s.kind for s in info.other_streams]
        assert kinds.count("audio") == facts.audio and kinds.count("subtitle") == facts.subtitles


def test_cfr_mov_keeps_timing_and_both_audio_tracks(clips: dict[str, Path], tmp_path: Path) -> None:
    src, out = clips["cfr_mov"], tmp_path / "out.mov"
    report = passthrough(src, out, **FAST)
    assert report.frames == 30 and report.not_carried == ()
    assert video_times(out) == video_times(src)
    for sel in ("a:0", "a:1"):
        assert timed(out, sel) == timed(src, sel), sel  # pts, duration and payload per packet
    a, b = ffprobe(src), ffprobe(out)
    for n in (0, 1):
        _same_tags(stream(a, "audio", n), stream(b, "audio", n))
    sv, ov = stream(a, "video"), stream(b, "video")
    assert ov["nb_frames"] == sv["nb_frames"] == "30"
    assert ov["duration"] == sv["duration"]
    for key in ("color_primaries", "color_transfer", "color_space", "pix_fmt"):
        assert ov[key] == sv[key], key
    before, after = read_all(src), read_all(out)
    assert [f.pts for f in after] == [f.pts for f in before]
    assert min_psnr(before, after) > 33


def test_vfr_mp4_keeps_irregular_pts_and_subtitles(clips: dict[str, Path], tmp_path: Path) -> None:
    src, out = clips["vfr_mp4"], tmp_path / "out.mp4"
    gaps = np.diff([float(t) for t in video_times(src)])
    assert gaps.max() > 2 * gaps.min()  # the clip really is variable-rate
    passthrough(src, out, **FAST)
    assert video_times(out) == video_times(src)
    assert timed(out, "a:0") == timed(src, "a:0")
    assert timed(out, "s:0") == timed(src, "s:0")
    _same_tags(stream(ffprobe(src), "subtitle"), stream(ffprobe(out), "subtitle"))
    assert stream(ffprobe(out), "video")["duration"] == stream(ffprobe(src), "video")["duration"]


def test_mkv_keeps_odd_size_subtitles_chapters_attachment(clips: dict[str, Path],
                                                          tmp_path: Path) -> None:
    src, out = clips["odd_mkv"], tmp_path / "out.mkv"
    report = passthrough(src, out, **FAST)
    assert report.not_carried == ()
    a, b = ffprobe(src), ffprobe(out)
    ov = stream(b, "video")
    assert (ov["width"], ov["height"]) == (641, 359)
    assert video_times(out) == video_times(src)
    for sel in ("a:0", "a:1", "s:0"):
        assert timed(out, sel) == timed(src, sel), sel
    _same_tags(stream(a, "audio", 1), stream(b, "audio", 1))
    _same_tags(stream(a, "subtitle"), stream(b, "subtitle"))
    assert [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in b["chapters"]] == \
           [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in a["chapters"]]
    assert b["format"]["tags"]["title"] == "Test clip"
    assert stream(b, "attachment")["tags"]["filename"] == "font.ttf"


def test_mkv_whose_video_starts_late_is_whole_and_keeps_its_frame_durations(
        clips: dict[str, Path], tmp_path: Path) -> None:
    """FFmpeg's Matroska DURATION tag is an end time: a late video start is not a lost end."""
    src = clips["cfr_mov"]
    late = tmp_path / "late.mkv"
    run("ffmpeg", "-v", "error", "-itsoffset", "0.5", "-i", str(src), "-i", str(src), "-map",
        "0:v", "-map", "1:a:0", "-c", "copy", str(late))
    assert len(read_all(late)) == len(read_all(src))
    out = tmp_path / "out.mkv"
    passthrough(late, out, **FAST)
    assert [t[:2] for t in timed(out, "v:0")] == [t[:2] for t in timed(late, "v:0")]


def test_mp4_output_reports_what_it_cannot_hold(clips: dict[str, Path], tmp_path: Path) -> None:
    src, out = clips["odd_mkv"], tmp_path / "out.mp4"
    report = passthrough(src, out, **FAST)
    kinds = sorted(note.kind for note in report.not_carried)
    assert kinds == ["attachment", "subtitle"]
    assert all("mp4" in note.reason for note in report.not_carried)
    assert payloads(out, "a:0") == payloads(src, "a:0")  # audio still carried unchanged
    assert payloads(out, "a:1") == payloads(src, "a:1")
    strict = tmp_path / "strict.mp4"
    with pytest.raises(StreamCopyError, match=r"^\S*strict\.mp4: .*subtitle"):  # not the temp
        passthrough(src, strict, strict_streams=True, **FAST)
    assert not strict.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_mpeg_ts_output(clips: dict[str, Path], tmp_path: Path, codec: str) -> None:
    src, out = clips["cfr_mov"], tmp_path / "out.ts"
    passthrough(src, out, codec=codec, **FAST)
    assert stream(ffprobe(out), "video")["codec_name"] == {"h264": "h264", "h265": "hevc"}[codec]
    assert len(read_all(out)) == len(read_all(src))
    # the audio is copied: MPEG-TS only puts a 7-byte ADTS header before each AAC packet
    sizes = [[int(p["size"]) for p in packets(f, "a:0")] for f in (src, out)]
    assert sizes[1] == [n + 7 for n in sizes[0]]


def test_rotation_is_carried_not_applied(clips: dict[str, Path], tmp_path: Path) -> None:
    src, out = clips["rot_mp4"], tmp_path / "out.mp4"
    frames = read_all(src)
    assert frames[0].size == (160, 96)  # delivered as stored
    passthrough(src, out, **FAST)
    a, b = ffprobe(src), ffprobe(out)
    assert rotation(a) is not None and rotation(b) == rotation(a)
    assert (stream(b, "video")["width"], stream(b, "video")["height"]) == (160, 96)
    assert probe(out).display_matrix == probe(src).display_matrix


@pytest.mark.parametrize(("key", "suffix", "codec", "pix_fmt"), [
    ("hevc10_mp4", ".mp4", "auto", "yuv420p10le"),
    ("hevc10_mp4", ".mkv", "h265", "yuv420p10le"),
    ("ffv1_10_mkv", ".mkv", "ffv1", "yuv422p10le"),
    ("ffv1_10_mkv", ".mov", "prores", "yuv422p10le"),
])
def test_deep_sources_stay_deep(clips: dict[str, Path], tmp_path: Path, key: str, suffix: str,
                                codec: str, pix_fmt: str) -> None:
    src, out = clips[key], tmp_path / f"out{suffix}"
    before = read_all(src)
    assert before[0].pixels.dtype == np.uint16
    passthrough(src, out, codec=codec, **FAST)
    a, b = stream(ffprobe(src), "video"), stream(ffprobe(out), "video")
    assert b["pix_fmt"] == pix_fmt
    for tag in ("color_range", "color_primaries", "color_transfer", "color_space"):
        assert b.get(tag) == a.get(tag), tag
    # Matroska counts milliseconds and starts at 0 even when AAC priming begins earlier
    # (as ffmpeg's own remux does), so compare times from the first frame to the ms.
    t_src, t_out = video_times(src), video_times(out)
    assert [round(t - t_src[0], 3) for t in t_src] == [round(t - t_out[0], 3) for t in t_out]
    assert payloads(out, "a:0") == payloads(src, "a:0")
    after = read_all(out)
    assert after[0].pixels.dtype == np.uint16 and len(after) == len(before)
    assert min_psnr(before, after) > 36


def test_lossless_ffv1_is_nearly_exact(clips: dict[str, Path], tmp_path: Path) -> None:
    src, out = clips["odd_mkv"], tmp_path / "out.mkv"
    passthrough(src, out, codec="ffv1")
    assert stream(ffprobe(out), "video")["codec_name"] == "ffv1"
    before, after = read_all(src), read_all(out)
    # only the RGB <-> YUV rounding of the round trip remains
    assert min_psnr(before, after) > 45


def _framemd5(path: Path) -> list[str]:
    out = run("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-")
    return [line.split(",")[-1].strip() for line in out.splitlines() if not line.startswith("#")]


def test_untouched_frames_are_encoded_from_the_decoded_pictures(clips: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    src, out = clips["cfr_mov"], tmp_path / "out.mkv"
    with VideoReader(src) as reader, VideoWriter(
            out, source=reader.info, options=WriterOptions(codec="ffv1")) as writer:
        for frame in reader:
            assert frame.source is not None
            writer.write(frame if frame.index % 2 else frame.with_pixels(frame.pixels.copy()))
    before, after = _framemd5(src), _framemd5(out)
    assert len(before) == len(after) == 30
    # odd frames: the source's YUV exactly; even ones went through RGB and back
    assert before[1::2] == after[1::2]
    assert all(a != b for a, b in zip(before[::2], after[::2], strict=True))


def _planes(picture) -> list[np.ndarray]:
    from vidrestore.io.frame import plane_bytes

    size = 2 if picture.format.name.endswith("le") else 1
    return [plane_bytes(p)[:, :p.width * size].copy() for p in picture.planes]


def _pictures(path: Path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [_planes(f) for f in c.decode(video=0)]


@pytest.mark.parametrize("key", ["cfr_mov", "odd_mkv", "ffv1_10_mkv"])
def test_patched_frames_keep_the_source_outside_their_boxes(clips: dict[str, Path],
                                                            tmp_path: Path, key: str) -> None:
    """A frame changed only inside a box is written as the decoded picture with that box (and
    a margin) converted back: every other sample is the source's exactly, the box's samples are
    those the whole frame's conversion gives; pickled, it travels as its pixels."""
    from vidrestore.io.patch import MARGIN

    src = clips[key]
    outs = {"patched": tmp_path / "patched.mkv", "whole": tmp_path / "whole.mkv"}
    boxes = {}
    with VideoReader(src) as reader, VideoWriter(
            outs["patched"], source=reader.info, options=WriterOptions(codec="ffv1")) as a, \
            VideoWriter(outs["whole"], source=reader.info,
                        options=WriterOptions(codec="ffv1")) as b:
        for frame in reader:
            w, h = frame.size
            box = (w // 4 + frame.index, h // 3, w // 2 + 1, h // 2 + frame.index % 3)
            pixels = frame.pixels.copy()
            x0, y0, x1, y1 = box
            pixels[y0:y1, x0:x1] = pixels[y0:y1, x0:x1] // 2 + pixels.max() // 4
            patched = frame.patched(pixels, (box,))
            assert patched.source is frame.source and patched.changed == (box,)
            again = pickle.loads(pickle.dumps(patched))
            assert again.source is None and np.array_equal(again.pixels, pixels)
            a.write(patched)
            b.write(frame.with_pixels(pixels))
            boxes[frame.index] = box
    source, patched_out, whole = (_pictures(p) for p in (src, outs["patched"], outs["whole"]))
    assert len(source) == len(patched_out) == len(whole) == len(boxes)
    if key == "odd_mkv":  # 641x359 4:2:0: converted whole, as before
        assert all(np.array_equal(a, b) for pa, pb in zip(patched_out, whole, strict=True)
                   for a, b in zip(pa, pb, strict=True))
        return
    size = 2 if "10" in key else 1
    sub = {"cfr_mov": (1, 1), "odd_mkv": (1, 1), "ffv1_10_mkv": (1, 0)}[key]
    changed_outside = 0
    for n, (s_planes, p_planes, w_planes) in enumerate(zip(source, patched_out, whole,
                                                           strict=True)):
        x0, y0, x1, y1 = boxes[n]
        for k, (sp, pp, wp) in enumerate(zip(s_planes, p_planes, w_planes, strict=True)):
            cx, cy = (1, 1) if k == 0 else (1 << sub[0], 1 << sub[1])
            rows = slice(max(0, y0 - MARGIN - 1) // cy, (y1 + MARGIN + 1) // cy + 1)
            cols = slice(max(0, x0 - MARGIN - 1) // cx * size,
                         ((x1 + MARGIN + 1) // cx + 1) * size)
            inside = np.zeros(sp.shape, bool)
            inside[rows, cols] = True
            assert np.array_equal(pp[~inside], sp[~inside])  # the source, exactly
            core = (slice((y0 + cy - 1) // cy, y1 // cy), slice((x0 + cx - 1) // cx * size,
                                                                 x1 // cx * size))
            assert np.array_equal(pp[core], wp[core])  # as converting the whole frame
            changed_outside += int((wp[~inside] != sp[~inside]).sum())
    if size == 1:  # the whole frame's conversion changes samples it had no reason to
        assert changed_outside > 0


@pytest.mark.parametrize("deep", [False, True])
def test_frames_convert_back_the_same_every_time(clips: dict[str, Path], deep: bool) -> None:
    """The writer's RGB -> YUV conversion gives the same samples for the same pixels every
    time (swscale's sliced conversion does not; it runs unsliced)."""
    from av.video.reformatter import VideoReformatter

    from vidrestore.io.color import from_rgb_args, rgb_frame

    key = "ffv1_10_mkv" if deep else "cfr_mov"
    with VideoReader(clips[key]) as reader:
        info, frame = reader.info, next(iter(reader))
    pix_fmt = frame.source.format.name
    seen = set()
    for _ in range(60):
        junk = [np.full(1 << 20, 255, np.uint8) for _ in range(3)]  # dirty the heap
        out = VideoReformatter().reformat(rgb_frame(frame.pixels), **from_rgb_args(info, pix_fmt))
        seen.add(b"".join(p.tobytes() for p in _planes(out)))
        del junk
    assert len(seen) == 1


def test_lazy_rgb_gives_the_same_pixels_on_demand(clips: dict[str, Path]) -> None:
    src = clips["cfr_mov"]
    with VideoReader(src) as eager, VideoReader(src, lazy_rgb=True) as lazy:
        pairs = list(zip(eager, lazy, strict=True))
    for a, b in pairs:
        assert b.size == a.size and np.array_equal(a.pixels, b.pixels)


def test_pickled_frames_keep_their_source_picture(clips: dict[str, Path]) -> None:
    with VideoReader(clips["odd_mkv"]) as reader:
        frame = next(iter(reader))
    copy = pickle.loads(pickle.dumps(frame))
    assert (copy.index, copy.pts, copy.time_base) == (frame.index, frame.pts, frame.time_base)
    assert np.array_equal(copy.pixels, frame.pixels)
    assert copy.source.format.name == frame.source.format.name
    for a, b in zip(frame.source.planes, copy.source.planes, strict=True):  # 8-bit, odd size
        rows = [np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)[:, :p.width]
                for p in (a, b)]
        assert np.array_equal(*rows)


def test_interlaced_field_order_is_kept(clips: dict[str, Path], tmp_path: Path) -> None:
    src, out = clips["interlaced_mp4"], tmp_path / "out.mp4"
    assert probe(src).field_order == "tt"
    passthrough(src, out, **FAST)
    assert stream(ffprobe(out), "video")["field_order"] == "tt"


def test_default_encoder_is_x264_crf18_medium(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    passthrough(clips["rot_mp4"], out)
    assert stream(ffprobe(out), "video")["codec_name"] == "h264"
    settings = out.read_bytes()
    assert b"crf=18.0" in settings and b"rc_lookahead=40" in settings  # medium's look-ahead


def test_x264_uses_frame_threads_as_the_ffmpeg_cli_does(clips: dict[str, Path],
                                                        tmp_path: Path) -> None:
    # PyAV's default (slice threads) makes x264 cut each frame into slices, one per thread
    out = tmp_path / "out.mkv"
    passthrough(clips["odd_mkv"], out, encoder_threads=2)
    settings = out.read_bytes()
    assert b" threads=2 " in settings and b"sliced_threads=0" in settings


def _aligned(a: list[Frame], b: list[Frame]) -> bool:
    """Each frame of ``b`` is closest to the frame of ``a`` at the same position."""
    for i, frame in enumerate(b):
        scores = [psnr(other.pixels, frame.pixels) for other in a]
        if int(np.argmax(scores)) != i:
            return False
    return True


def test_decord_backend_gives_same_frames_and_pts(clips: dict[str, Path]) -> None:
    pytest.importorskip("decord")
    a = read_all(clips["vfr_mp4"], backend="pyav")
    b = read_all(clips["vfr_mp4"], backend="decord")
    assert [f.pts for f in b] == [f.pts for f in a]
    assert _aligned(a, b) and min_psnr(a, b) > 30  # decord samples chroma more coarsely
    c = read_all(clips["vfr_mp4"], backend="decord", start="10f", end="20f")
    inside = [f for f in a if Fraction(10, 9) <= f.pts * f.time_base < Fraction(20, 9)]
    assert [f.pts for f in c] == [f.pts for f in inside] and len(c) > 3
    assert _aligned(inside, c)


def test_decord_refuses_what_it_would_alter(clips: dict[str, Path]) -> None:
    pytest.importorskip("decord")
    with pytest.raises(ValueError, match="bt709 colour matrix"):
        VideoReader(clips["cfr_mov"], backend="decord")
    with pytest.raises(ValueError, match="8 of the 10 bits"):
        VideoReader(clips["hevc10_mp4"], backend="decord")


def test_frames_are_read_once_per_reader(clips: dict[str, Path]) -> None:
    with VideoReader(clips["rot_mp4"]) as reader:
        assert len(list(reader)) == 15
        with pytest.raises(ValueError, match="read once"):
            list(reader)


def _mean_luma(path: Path) -> float:
    """Mean of the stored Y plane, read straight from the decoder (no RGB conversion)."""
    with av.open(str(path)) as container:
        return float(np.mean([f.to_ndarray()[: f.height].mean()
                              for f in container.decode(video=0)]))


def test_exact_rgb_keeps_brightness_fast_path_darkens(clips: dict[str, Path],
                                                      tmp_path: Path) -> None:
    src = clips["rot_mp4"]
    shift = {}
    for exact in (True, False):
        out = tmp_path / f"{exact}.mkv"
        with VideoReader(src, exact_rgb=exact) as reader, VideoWriter(
                out, source=reader.info, options=WriterOptions(codec="ffv1")) as writer:
            for frame in reader:
                writer.write(frame.with_pixels(frame.pixels))  # through RGB, as a changed frame
        shift[exact] = _mean_luma(out) - _mean_luma(src)
    assert abs(shift[True]) < 0.05  # lossless FFV1: only the round trip's rounding is left
    assert shift[False] < -0.5  # the documented cost of the fast path


def test_timecode_is_kept_and_dropped_for_a_cut(tmp_path: Path) -> None:
    src = tmp_path / "tc.mov"
    run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=0.4",
        "-timecode", "01:00:00:00", "-c:v", "libx264", "-preset", "ultrafast", str(src))
    for out in (tmp_path / "out.mov", tmp_path / "out.mkv"):
        assert passthrough(src, out, **FAST).not_carried == ()
        tags = {k.lower(): v for k, v in stream(ffprobe(out), "video")["tags"].items()}
        assert tags["timecode"] == "01:00:00:00"
    assert [s["codec_tag_string"] for s in ffprobe(tmp_path / "out.mov")["streams"]] == [
        "avc1", "tmcd"]
    report = passthrough(src, tmp_path / "cut.mov", start=0.2, **FAST)
    assert [n.codec for n in report.not_carried] == ["timecode"]
    head = tmp_path / "head.mov"  # a cut from the beginning keeps the start timecode
    assert passthrough(src, head, end=0.2, strict_streams=True, **FAST).not_carried == ()
    tags = {k.lower(): v for k, v in stream(ffprobe(head), "video")["tags"].items()}
    assert tags["timecode"] == "01:00:00:00" and len(read_all(head)) == 5
