"""Raw video frames over byte streams: the library side of ``vidrestore pipe``.

A raw stream is a bare sequence of packed RGB pictures of one known size, as ffmpeg writes them
with ``-f rawvideo -pix_fmt rgb24`` (8 bits a channel) or ``rgb48le`` (16 bits, little-endian).
There is no header and no timing, so the size, the pixel format and the frame rate are given by
the caller. :func:`run_pipe` reads such a stream, restores it with a :class:`Restorer` and writes
the restored frames in the same format, streaming: memory holds a few frames, never the video.

Latency: with a causal face stream and the ``recurrent`` temporal mode nothing waits for later
frames, so a frame leaves as soon as its faces went through the network (one face at a time
unless a batch size is set: a frame then may wait for up to ``batch_size - 1`` later faces).
A look-ahead
(:func:`stream_options`: landmark smoothing that many frames ahead, and the ``window`` temporal
mode) delays the output by a fixed number of frames more, :func:`stream_latency`. Every input
frame comes out exactly once, in order, and the last ones are flushed when the input ends.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import IO, TYPE_CHECKING

import numpy as np

from ..concurrency import BackgroundSink, prefetch
from ..errors import SourceError, UsageError
from ..io.frame import Frame

if TYPE_CHECKING:
    from ..faces.options import FaceOptions
    from ..restore.options import RestoreOptions
    from ..restore.pipeline import Restorer

PIX_FMTS: dict[str, np.dtype] = {
    "rgb24": np.dtype(np.uint8),
    "rgb48le": np.dtype("<u2"),
}
"""Raw pixel formats the pipe reads and writes, with the sample type of each."""

MAX_SIDE = 16384


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` to ``(1920, 1080)``."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--size: {text!r} is not WIDTHxHEIGHT (e.g. 1920x1080)") from None
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise UsageError(f"--size: {text!r} is outside 1x1..{MAX_SIDE}x{MAX_SIDE}")
    return w, h


def parse_rate(text: str | float | Fraction) -> Fraction:
    """A frame rate as ``25``, ``"30000/1001"`` or ``"29.97"``, as an exact fraction."""
    try:
        rate = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"--rate: {text!r} is not a frame rate (e.g. 25 or 30000/1001)"
                         ) from None
    if rate <= 0:
        raise UsageError(f"--rate: {text!r} must be above 0")
    return rate


@dataclass(frozen=True)
class RawFormat:
    """Size, pixel format and rate of a raw frame stream (it carries none of them itself)."""

    width: int
    height: int
    pix_fmt: str = "rgb24"
    rate: Fraction = Fraction(25)

    def __post_init__(self) -> None:
        if self.pix_fmt not in PIX_FMTS:
            raise UsageError(f"--pix-fmt: {self.pix_fmt!r} is not one of {', '.join(PIX_FMTS)}")
        if not (0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
            raise UsageError(f"--size: {self.width}x{self.height} is outside "
                             f"1x1..{MAX_SIDE}x{MAX_SIDE}")
        object.__setattr__(self, "rate", parse_rate(self.rate))

    @classmethod
    def parse(cls, size: str, pix_fmt: str = "rgb24", rate: str | float | Fraction = 25
              ) -> RawFormat:
        """From the command-line spellings (``"1920x1080"``, ``"rgb24"``, ``"30000/1001"``)."""
        w, h = parse_size(size)
        return cls(w, h, pix_fmt, parse_rate(rate))

    @property
    def dtype(self) -> np.dtype:
        """Sample type of the stream (``uint8`` or little-endian ``uint16``)."""
        return PIX_FMTS[self.pix_fmt]

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame."""
        return self.width * self.height * 3 * self.dtype.itemsize

    def describe(self) -> str:
        return f"{self.width}x{self.height} {self.pix_fmt}"

    def scaled(self, scale: int) -> RawFormat:
        """The same format ``scale`` times larger (the output of ``--upscale``)."""
        return dataclasses.replace(self, width=self.width * scale, height=self.height * scale)


def _read_full(stream: IO[bytes], view: memoryview) -> int:
    """Fill ``view`` from ``stream``; fewer bytes only at the end of the stream."""
    total = 0
    while total < len(view):
        n = stream.readinto(view[total:])  # type: ignore[attr-defined]
        if not n:
            break
        total += n
    return total


class RawFrameReader:
    """Iterates the frames of a raw stream; a torn last frame ends it and is kept as ``error``.

    Frames are numbered from 0 with ``pts = index`` in a time base of ``1 / rate``. A stream that
    ends inside a frame stops the iteration after the last whole frame and leaves a one-line
    :class:`SourceError` in :attr:`error`, so the caller can finish the whole frames first and
    then report it.
    """

    def __init__(self, stream: IO[bytes], fmt: RawFormat, *, name: str = "stdin") -> None:
        self.stream = stream
        self.format = fmt
        self.name = name
        self.frames_read = 0
        self.error: SourceError | None = None

    def __iter__(self) -> Iterator[Frame]:
        fmt = self.format
        size = fmt.frame_bytes
        time_base = 1 / fmt.rate
        shape = (fmt.height, fmt.width, 3)
        while True:
            buf = bytearray(size)
            got = _read_full(self.stream, memoryview(buf))
            if got == 0:
                return
            if got < size:
                self.error = SourceError(
                    f"{self.name}: the stream ended inside frame {self.frames_read} "
                    f"({got} of {size} bytes of a {fmt.describe()} frame); check --size and "
                    "--pix-fmt")
                return
            pixels = np.frombuffer(buf, dtype=fmt.dtype).reshape(shape)
            if pixels.dtype != np.uint16 and fmt.dtype.itemsize == 2:
                pixels = pixels.astype(np.uint16)  # big-endian hosts: native order
            index = self.frames_read
            self.frames_read += 1
            yield Frame(index, index, time_base, pixels)


def read_frames(stream: IO[bytes], fmt: RawFormat, *, name: str = "stdin") -> Iterator[Frame]:
    """The frames of a raw stream; a torn last frame raises :class:`SourceError` at its place."""
    reader = RawFrameReader(stream, fmt, name=name)
    yield from reader
    if reader.error is not None:
        raise reader.error


def frame_to_bytes(frame: Frame, fmt: RawFormat) -> memoryview:
    """A frame's pixels packed as ``fmt`` (8-bit and 16-bit samples are rescaled if needed)."""
    p = frame.pixels
    if p.shape != (fmt.height, fmt.width, 3):
        raise ValueError(f"frame {frame.index} is {p.shape[1]}x{p.shape[0]}, the stream is "
                         f"{fmt.width}x{fmt.height}")
    if fmt.dtype.itemsize == 1 and p.dtype == np.uint16:
        p = ((p.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif fmt.dtype.itemsize == 2 and p.dtype == np.uint8:
        p = p.astype(np.uint16) * np.uint16(257)
    return memoryview(np.ascontiguousarray(p, dtype=fmt.dtype).data).cast("B")


def stream_options(options: RestoreOptions, faces: FaceOptions, lookahead: int, *,
                   temporal_given: bool = True) -> tuple[RestoreOptions, FaceOptions]:
    """Options for a stream whose output may lag its input by a fixed number of frames.

    ``lookahead == 0`` makes the face stream causal (nothing waits for later frames), and an
    automatic network batch one face, so that no frame waits for another's face either. A positive
    value lets the face stream hold each frame back by exactly that many frames: landmarks are
    smoothed with what follows, and gaps up to that length are bridged. Unless the temporal mode
    was chosen explicitly (``temporal_given``), it becomes ``recurrent`` (causal) without
    look-ahead and ``window`` with it, its window capped at ``lookahead``.
    """
    if lookahead < 0:
        raise UsageError(f"--lookahead: {lookahead} is below the minimum 0")
    if lookahead == 0:
        faces = dataclasses.replace(faces, causal=True)
        if options.batch_size == 0:  # automatic: a batch of one face, so no frame waits
            options = dataclasses.replace(options, batch_size=1)
    else:
        faces = dataclasses.replace(faces, causal=False, lookahead=lookahead,
                                    max_gap=min(faces.max_gap, lookahead),
                                    min_hits=min(faces.min_hits, lookahead + 1))
    if not temporal_given:
        if lookahead == 0:
            options = dataclasses.replace(options, temporal="recurrent")
        else:
            options = dataclasses.replace(options, temporal="window",
                                          window=min(options.window, lookahead))
    return options, faces


def stream_latency(restorer: Restorer) -> int:
    """Frames the output lags its input by at most, besides one network batch of faces: the
    face stream's hold-back plus, in ``window`` mode, the window."""
    lag = int(restorer.face_stream.lookahead)
    if restorer.options.temporal == "window":
        lag += restorer.options.window
    return lag


@dataclass
class PipeSummary:
    """What a pipe run did."""

    frames: int
    faces_restored: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_pipe(source: IO[bytes], sink: IO[bytes], fmt: RawFormat, restorer: Restorer, *,
             name: str = "stdin", progress_callback: Callable[[int], None] | None = None,
             queue_frames: int = 4) -> PipeSummary:
    """Restore the raw frames of ``source`` into ``sink``, in the same format, streaming (the
    output ``restorer.options.upscale`` times the input size).

    Reading and writing run in their own threads, ``queue_frames`` frames ahead, so the
    processes on either side keep working while faces are restored. ``sink`` is flushed after
    every frame. Whole frames before a torn last frame are all written before the
    :class:`SourceError` about it is raised. A closed ``sink`` raises ``BrokenPipeError``.

    Args:
        source: readable binary stream of packed frames (e.g. ``sys.stdin.buffer``).
        sink: writable binary stream for the restored frames.
        fmt: size, pixel format and rate of the input (the output's, times the upscale).
        restorer: the :class:`Restorer` to run (its state continues across calls).
        name: the source's name in error messages.
        progress_callback: called with the number of frames written so far.
    """
    t0 = time.perf_counter()
    reader = RawFrameReader(source, fmt, name=name)
    out_fmt = fmt.scaled(restorer.upscaler.scale)

    def write(frame: Frame) -> None:
        sink.write(frame_to_bytes(frame, out_fmt))
        sink.flush()

    done = 0
    with BackgroundSink(write, size=queue_frames, name="pipe-writer") as out:
        for frame in restorer.process(prefetch(reader, queue_frames, "pipe-reader")):
            out.put(frame)
            done += 1
            if progress_callback is not None:
                progress_callback(done)
    if reader.error is not None:
        raise reader.error
    return PipeSummary(frames=done, faces_restored=restorer.faces_restored,
                       seconds=time.perf_counter() - t0)
