"""Tiny clips for the I/O tests, made by the ffmpeg command-line tool, and ffprobe helpers.

Each clip is described by a :class:`Clip` (what it holds) and built once per session. The
ffmpeg/ffprobe programs are independent of the PyAV code under test, so what they report about
an output is a fair check of it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidrestore.io import Frame, VideoReader, VideoWriter, WriteReport, WriterOptions

SRT = """1
00:00:00,100 --> 00:00:00,400
Hello

2
00:00:00,500 --> 00:00:00,800
World
"""

FFMETADATA = """;FFMETADATA1
title=Test clip
comment=made for the io tests
[CHAPTER]
TIMEBASE=1/1000
START=0
END=400
title=One
[CHAPTER]
TIMEBASE=1/1000
START=400
END=960
title=Two
"""


@dataclass(frozen=True)
class Clip:
    """A test clip: file name, ffmpeg arguments after the common inputs, and its facts."""

    name: str
    args: tuple[str, ...]
    frames: int
    width: int
    height: int
    audio: int = 0
    subtitles: int = 0
    pix_fmt: str = "yuv420p"
    rotate: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


def _lavfi(spec: str) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", spec)


# Softer colours and edges than the raw test pattern, closer to camera footage: its saturated
# one-pixel colour edges leave the RGB gamut once chroma is subsampled, which no RGB round trip
# can bring back.
SOFT = "eq=saturation=0.6,gblur=sigma=1.5"


# Inputs: 0 = picture, 1 = tone A, 2 = tone B, 3 = subtitles (srt), 4 = ffmetadata (chapters).
CLIPS = {
    "cfr_mov": Clip(
        "cfr.mov",
        (*_lavfi("testsrc2=s=160x96:r=30000/1001:d=1"), *_lavfi("sine=f=440:d=1"),
         *_lavfi("sine=f=880:d=1"), "-map", "0", "-map", "1", "-map", "2", "-vf", SOFT,
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
         "-c:a:0", "aac", "-c:a:1", "pcm_s16le", "-metadata:s:a:0", "language=eng",
         "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Commentary"),
        frames=30, width=160, height=96, audio=2),
    "vfr_mp4": Clip(
        "vfr.mp4",
        (*_lavfi("testsrc2=s=128x72:r=30:d=1"), *_lavfi("sine=d=1.2"), "-i", "{srt}",
         "-map", "0", "-map", "1", "-map", "2",
         "-vf", f"setpts='(N+N*N/12)/(30*TB)',{SOFT}", "-fps_mode", "passthrough",
         "-video_track_timescale", "90000", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"),
        frames=30, width=128, height=72, audio=1, subtitles=1),
    "odd_mkv": Clip(
        "odd.mkv",
        (*_lavfi("testsrc2=s=640x360:r=25:d=0.96"), *_lavfi("sine=d=1"),
         *_lavfi("sine=f=660:d=1"), "-i", "{srt}", "-i", "{meta}",
         "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-map_metadata", "4",
         "-map_chapters", "4", "-vf", f"scale=641:359,{SOFT}", "-c:v", "ffv1",
         "-pix_fmt", "yuv420p",
         "-c:a:0", "aac", "-c:a:1", "pcm_s16le", "-c:s", "srt",
         "-metadata:s:s:0", "language=deu", "-metadata:s:a:1", "title=Commentary",
         "-attach", "{font}", "-metadata:s:t", "mimetype=application/x-truetype-font"),
        frames=24, width=641, height=359, audio=2, subtitles=1),
    "rot_mp4": Clip(
        "rot.mp4",
        (*_lavfi("testsrc2=s=160x96:r=25:d=0.6"), *_lavfi("sine=d=0.6"),
         "-map", "0", "-map", "1", "-vf", SOFT, "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac"),
        frames=15, width=160, height=96, audio=1, rotate=90),
    "hevc10_mp4": Clip(
        "hevc10.mp4",
        (*_lavfi("testsrc2=s=128x72:r=24:d=0.5"), *_lavfi("sine=d=0.5"), "-map", "0", "-map", "1",
         "-vf", SOFT, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
         "-pix_fmt", "yuv420p10le", "-color_range", "pc", "-color_primaries", "bt2020",
         "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc", "-c:a", "aac"),
        frames=12, width=128, height=72, audio=1, pix_fmt="yuv420p10le"),
    "ffv1_10_mkv": Clip(
        "ffv1_10.mkv",
        (*_lavfi("testsrc2=s=128x72:r=25:d=0.48"), *_lavfi("sine=d=0.5"), "-map", "0",
         "-map", "1", "-vf", SOFT, "-c:v", "ffv1", "-pix_fmt", "yuv422p10le", "-c:a", "pcm_s24le"),
        frames=12, width=128, height=72, audio=1, pix_fmt="yuv422p10le"),
    "interlaced_mp4": Clip(
        "interlaced.mp4",
        (*_lavfi("testsrc2=s=128x72:r=25:d=0.4"), "-c:v", "libx264", "-preset", "ultrafast",
         "-flags", "+ildct+ilme", "-top", "1"),
        frames=10, width=128, height=72),
    "faststart_mp4": Clip(
        "faststart.mp4",
        (*_lavfi("testsrc2=s=128x72:r=25:d=2"), *_lavfi("sine=d=2"), "-map", "0", "-map", "1",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-c:a", "aac",
         "-movflags", "+faststart"),
        frames=50, width=128, height=72, audio=1),
}


def run(*args: str) -> str:
    """Run a command; fail the test with its stderr when it fails."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"{' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def need_ffmpeg() -> None:
    if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
        pytest.skip("the ffmpeg and ffprobe programs are needed to make and check clips")


def make_clip(folder: Path, clip: Clip) -> Path:
    """Encode ``clip`` into ``folder`` with the ffmpeg program."""
    side = {"srt": folder / "subs.srt", "meta": folder / "meta.txt", "font": folder / "font.ttf"}
    side["srt"].write_text(SRT)
    side["meta"].write_text(FFMETADATA)
    side["font"].write_bytes(b"\x00\x01\x00\x00 not really a font")
    args = [a.format(**side) for a in clip.args]
    out = folder / clip.name
    if clip.rotate:
        plain = folder / f"plain_{clip.name}"
        run("ffmpeg", "-v", "error", "-y", *args, str(plain))
        run("ffmpeg", "-v", "error", "-y", "-i", str(plain), "-map", "0", "-c", "copy",
            "-metadata:s:v:0", f"rotate={clip.rotate}", str(out))
    else:
        run("ffmpeg", "-v", "error", "-y", *args, str(out))
    return out


def ffprobe(path: Path) -> dict[str, Any]:
    """Streams, format and chapters as ffprobe reports them."""
    return json.loads(run("ffprobe", "-v", "error", "-show_streams", "-show_format",
                          "-show_chapters", "-of", "json", str(path)))


def stream(info: dict[str, Any], kind: str, n: int = 0) -> dict[str, Any]:
    return [s for s in info["streams"] if s["codec_type"] == kind][n]


def packets(path: Path, selector: str) -> list[dict[str, Any]]:
    """Packets of one stream (``a:0``, ``v``, ``s:0``) with pts, duration and a payload hash."""
    out = run("ffprobe", "-v", "error", "-select_streams", selector, "-show_packets",
              "-show_data_hash", "sha256", "-of", "json", str(path))
    return json.loads(out)["packets"]


def payloads(path: Path, selector: str) -> list[str]:
    return [p["data_hash"] for p in packets(path, selector)]


def _time(value: str, time_base: str) -> Fraction:
    return int(value) * Fraction(time_base)


def video_times(path: Path) -> list[Fraction]:
    """Presentation times of the video packets, in order, as exact fractions of a second."""
    tb = stream(ffprobe(path), "video")["time_base"]
    return sorted(_time(p["pts"], tb) for p in packets(path, "v:0"))


def timed(path: Path, selector: str) -> list[tuple[Fraction, Fraction, str]]:
    """(start, duration, payload hash) of each packet of one stream, in seconds."""
    info = ffprobe(path)
    kind = {"a": "audio", "s": "subtitle", "v": "video"}[selector[0]]
    tb = stream(info, kind, int(selector.split(":")[1]) if ":" in selector else 0)["time_base"]
    return [(_time(p["pts"], tb), _time(p.get("duration", "0"), tb), p["data_hash"])
            for p in packets(path, selector)]


def rotation(info: dict[str, Any]) -> int | None:
    """The display rotation ffprobe reads from the video stream's side data."""
    for side in stream(info, "video").get("side_data_list", []):
        if "rotation" in side:
            return int(side["rotation"])
    return None


def get_clip(factory: pytest.TempPathFactory, key: str) -> Path:
    """The clip ``key`` of :data:`CLIPS`, built on first use and shared by the whole session."""
    need_ffmpeg()
    folder = factory.getbasetemp() / "io-clips" / key
    path = folder / CLIPS[key].name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        make_clip(folder, CLIPS[key])
    return path


def passthrough(src: Path, dst: Path, *, start: Any = None, end: Any = None,
                backend: str = "pyav", fps: Any = None, **options: Any) -> WriteReport:
    """Decode ``src`` and re-encode every frame unchanged into ``dst``."""
    with VideoReader(src, start=start, end=end, backend=backend, fps=fps) as reader, \
            VideoWriter(dst, source=reader.info, options=WriterOptions(**options),
                        start=start, end=end) as writer:
        for frame in reader:
            writer.write(frame)
    assert writer.report is not None
    return writer.report


def read_all(path: Path, **kwargs: Any) -> list[Frame]:
    with VideoReader(path, **kwargs) as reader:
        return list(reader)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    peak = 65535.0 if a.dtype == np.uint16 else 255.0
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def min_psnr(before: list[Frame], after: list[Frame]) -> float:
    """The worst PSNR over two equally long frame lists."""
    return min(psnr(a.pixels, b.pixels) for a, b in zip(before, after, strict=True))


def min_psnr_files(a: Path, b: Path) -> float:
    """The worst PSNR between two videos' frames, read side by side (memory stays flat)."""
    with VideoReader(a) as first, VideoReader(b) as second:
        return min(psnr(x.pixels, y.pixels) for x, y in zip(first, second, strict=True))
