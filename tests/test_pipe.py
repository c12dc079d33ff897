"""``vidrestore pipe``: raw frames through real ffmpeg processes and the real CLI.

The filter runs as its own process between an ffmpeg that decodes and an ffmpeg that encodes, as
users run it. Checks: frame count and sound after the outer ffmpeg, the restored bytes equal the
library's :class:`Restorer` on the same frames, frames without faces pass through byte for byte
(8 and 16 bits), a torn last frame is a one-line error after the whole frames, and a closed
stdout ends the filter quietly.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from synth import pan_frames, panned_face_clip, tiny_checkpoint, write_clip

from vidrestore.errors import SourceError, UsageError
from vidrestore.faces.options import FaceOptions
from vidrestore.hosts.rawpipe import (
    RawFormat,
    RawFrameReader,
    frame_to_bytes,
    read_frames,
    run_pipe,
    stream_latency,
    stream_options,
)
from vidrestore.io.frame import Frame
from vidrestore.restore.options import RestoreOptions
from vidrestore.restore.pipeline import Restorer

REPO = Path(__file__).resolve().parents[1]
W, H, N = 256, 192, 5
FFMPEG = ("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin")


def _env(mirror_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["VIDRESTORE_MIRROR"] = str(mirror_dir)
    env["VIDRESTORE_OFFLINE"] = "1"
    return env


def _pipe_cmd(*args: str, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "vidrestore", *(["-v"] if verbose else []), "pipe", "--size",
            f"{W}x{H}", "--device", "cpu", "--no-progress", *args]


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of",
                          "json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("pipe-ckpt") / "tiny.pth")


@pytest.fixture(scope="module")
def restorer_parts(weights: Path, yunet_path: Path) -> tuple[object, object]:
    """The network and detector, loaded once for the in-process references."""
    from vidrestore.faces import create_detector
    from vidrestore.models import load_codeformer

    return load_codeformer(weights), create_detector("yunet", FaceOptions(),
                                                     model_path=yunet_path)


def _restorer(parts: tuple[object, object], lookahead: int = 0) -> Restorer:
    opts, faces = stream_options(RestoreOptions(device="cpu"), FaceOptions(), lookahead,
                                 temporal_given=False)
    return Restorer(opts, faces, model=parts[0], detector=parts[1])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    """A panned real photo with one face, with a sound track."""
    return panned_face_clip(tmp_path_factory.mktemp("pipe") / "faces.mp4", media_dir, N, (W, H),
                            audio=True)


@pytest.fixture(scope="module")
def plain_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Moving coloured texture and no face."""
    rng = np.random.default_rng(3)
    base = cv2.resize(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (W * 2, H * 2),
                      interpolation=cv2.INTER_CUBIC)
    frames = pan_frames(base, N, (W, H), step=(1.3, 0.4))
    return write_clip(tmp_path_factory.mktemp("pipe") / "plain.mp4", frames, audio=False)


def _decode_raw(clip: Path, pix_fmt: str = "rgb24") -> bytes:
    return subprocess.run([*FFMPEG, "-i", str(clip), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
                          check=True, capture_output=True).stdout


# -- library part ----------------------------------------------------------------------------------
def test_raw_reader_numbers_frames_and_keeps_torn_tail() -> None:
    fmt = RawFormat.parse("4x2", "rgb48le", "30000/1001")
    pixels = np.arange(3 * 2 * 4 * 3, dtype=np.uint16).reshape(3, 2, 4, 3) * 97
    data = b"".join(frame_to_bytes(Frame(i, i, Fraction(1), p), fmt) for i, p in enumerate(pixels))
    reader = RawFrameReader(io.BytesIO(data + data[:10]), fmt)
    frames = list(reader)
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[2].time_base == Fraction(1001, 30000)
    assert all(np.array_equal(f.pixels, p) for f, p in zip(frames, pixels, strict=True))
    assert isinstance(reader.error, SourceError)
    assert "frame 3" in str(reader.error) and "10 of 48 bytes" in str(reader.error)
    with pytest.raises(SourceError, match="ended inside frame 3"):
        list(read_frames(io.BytesIO(data + data[:10]), fmt))
    assert len(list(read_frames(io.BytesIO(data), fmt))) == 3


def test_formats_and_latency_rules(restorer_parts: tuple[object, object]) -> None:
    with pytest.raises(UsageError, match="--size"):
        RawFormat.parse("1920by1080")
    with pytest.raises(UsageError, match="--pix-fmt"):
        RawFormat.parse("8x8", "yuv420p")
    with pytest.raises(UsageError, match="--rate"):
        RawFormat.parse("8x8", "rgb24", "0")
    assert RawFormat.parse("1920x1080", "rgb24").frame_bytes == 1920 * 1080 * 3
    causal = _restorer(restorer_parts)
    assert (causal.options.temporal, causal.face_options.causal) == ("recurrent", True)
    assert stream_latency(causal) == 0
    ahead = _restorer(restorer_parts, lookahead=3)
    assert (ahead.options.temporal, ahead.options.window) == ("window", 3)
    assert stream_latency(ahead) == 6  # 3 frames of landmark look-ahead + a window of 3
    opts, _ = stream_options(RestoreOptions(temporal="off"), FaceOptions(), 0)
    assert opts.temporal == "off"


def test_causal_stream_lets_no_frame_wait(face_clip: Path,
                                          restorer_parts: tuple[object, object]) -> None:
    """Without look-ahead each frame comes out before the next one is read."""
    frames = list(read_frames(io.BytesIO(_decode_raw(face_clip)), RawFormat(W, H)))
    restorer = _restorer(restorer_parts)
    pulled = 0

    def source() -> Iterator[Frame]:
        nonlocal pulled
        for f in frames:
            pulled += 1
            yield f

    out = [(o.index, pulled) for o in restorer.process(source())]
    assert [i for i, _ in out] == list(range(N))
    assert all(seen == i + 1 for i, seen in out), out
    assert sum(restorer.faces_restored.values()) > 0  # and faces did go through the network


def test_lookahead_delays_by_a_fixed_count_and_flushes(
        face_clip: Path, restorer_parts: tuple[object, object]) -> None:
    """While input flows, each frame leaves exactly ``stream_latency`` frames late plus at most
    a network batch; at the end every frame comes out, in order."""
    frames = list(read_frames(io.BytesIO(_decode_raw(face_clip)), RawFormat(W, H)))
    restorer = _restorer(restorer_parts, lookahead=1)
    lag = stream_latency(restorer)
    pulled, ended = 0, False

    def source() -> Iterator[Frame]:
        nonlocal pulled, ended
        for f in frames:
            pulled += 1
            yield f
        ended = True

    delays, order = [], []
    for out in restorer.process(source()):
        order.append(out.index)
        if not ended:
            delays.append(pulled - 1 - out.index)
    assert order == list(range(N))
    assert delays and min(delays) >= lag
    assert max(delays) <= lag + restorer.engine.batch_size


def test_pipe_between_ffmpegs_restores_and_keeps_sound(
        face_clip: Path, weights: Path, mirror_dir: Path, restorer_parts: tuple[object, object],
        tmp_path: Path) -> None:
    out_mp4, out_raw = tmp_path / "out.mp4", tmp_path / "out.raw"
    env = _env(mirror_dir)
    dec = subprocess.Popen([*FFMPEG, "-i", str(face_clip), "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-"], stdout=subprocess.PIPE)
    flt = subprocess.Popen(_pipe_cmd("--weights", str(weights), verbose=True), stdin=dec.stdout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    enc = subprocess.Popen([*FFMPEG, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
                            "-r", "25", "-i", "-", "-i", str(face_clip), "-map", "0:v", "-map",
                            "1:a", "-c:a", "copy", "-c:v", "libx264", str(out_mp4),
                            "-map", "0:v", "-c:v", "rawvideo", "-f", "rawvideo", str(out_raw)],
                           stdin=flt.stdout)
    dec.stdout.close()  # type: ignore[union-attr]
    flt.stdout.close()  # type: ignore[union-attr]
    err = flt.stderr.read().decode()  # type: ignore[union-attr]
    assert (enc.wait(120), flt.wait(120), dec.wait(120)) == (0, 0, 0), err

    streams = {s["codec_type"]: s for s in _ffprobe(out_mp4)["streams"]}
    assert int(streams["video"]["nb_read_frames"]) == N
    assert streams["audio"]["codec_name"] == "aac"
    assert f"pipe: {N} frames" in err  # the -v summary goes to stderr

    # the bytes the filter wrote equal the library on the same frames (no encoding between)
    fmt = RawFormat(W, H)
    frames = list(read_frames(io.BytesIO(_decode_raw(face_clip)), fmt))
    restorer = _restorer(restorer_parts)
    expected = b"".join(bytes(frame_to_bytes(f, fmt)) for f in restorer.process(frames))
    got = out_raw.read_bytes()
    assert len(got) == N * fmt.frame_bytes
    assert got == expected
    # causal, yet a confidently detected new face is restored from its first frame on
    assert sum(restorer.faces_restored.values()) == N
    assert got != _decode_raw(face_clip)


def test_no_face_frames_pass_through_and_a_torn_tail_is_an_error(
        plain_clip: Path, weights: Path, mirror_dir: Path) -> None:
    """Byte-exact pass-through of frames without faces; a torn last frame is one error line
    after the whole frames were written."""
    raw = _decode_raw(plain_clip)
    size = W * H * 3
    run = subprocess.run(_pipe_cmd("--weights", str(weights)), input=raw + raw[:1000],
                         capture_output=True, env=_env(mirror_dir), timeout=120)
    err = run.stderr.decode().strip()
    assert run.returncode == SourceError.exit_code, err
    assert run.stdout == raw  # all whole frames, unchanged
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"vidrestore: error: stdin: the stream ended inside frame {N} (1000 of {size} bytes of "
        f"a {W}x{H} rgb24 frame); check --size and --pix-fmt")


def test_16_bit_frames_pass_through(plain_clip: Path,
                                    restorer_parts: tuple[object, object]) -> None:
    fmt = RawFormat(W, H, "rgb48le")
    raw = _decode_raw(plain_clip, "rgb48le")
    sink = io.BytesIO()
    summary = run_pipe(io.BytesIO(raw), sink, fmt, _restorer(restorer_parts))
    assert summary.frames == N and summary.faces_restored == {}
    assert sink.getvalue() == raw


def test_closed_stdout_ends_quietly(plain_clip: Path, weights: Path, mirror_dir: Path) -> None:
    raw = _decode_raw(plain_clip)
    flt = subprocess.Popen(_pipe_cmd("--weights", str(weights)), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(mirror_dir))
    flt.stdin.write(raw[: 2 * W * H * 3])  # type: ignore[union-attr]
    flt.stdin.flush()  # type: ignore[union-attr]
    first = flt.stdout.read(W * H * 3)  # type: ignore[union-attr]
    flt.stdout.close()  # type: ignore[union-attr]
    try:
        flt.stdin.write(raw[2 * W * H * 3:])  # type: ignore[union-attr]
        flt.stdin.close()  # type: ignore[union-attr]
    except BrokenPipeError:
        pass
    assert flt.wait(60) == 141
    assert first == raw[: W * H * 3]
    err = flt.stderr.read().decode()  # type: ignore[union-attr]
    assert "Traceback" not in err and "rror" not in err, err


def test_bad_size_is_a_usage_error(mirror_dir: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "vidrestore", "pipe", "--size", "640"],
                         input=b"", capture_output=True, env=_env(mirror_dir), timeout=60)
    assert run.returncode == UsageError.exit_code
    assert run.stderr.decode().strip() == (
        "vidrestore: error: --size: '640' is not WIDTHxHEIGHT (e.g. 1920x1080)")
    assert run.stdout == b""
