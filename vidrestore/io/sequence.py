"""Image sequences: a numbered pattern (``frame_%06d.png``) or a folder of images.

Reading decodes one file at a time, so memory does not grow with the count. Frames get
``pts = position`` in a ``1/fps`` time base, with ``fps`` given by the user. Writing encodes
PNG, TIFF, DPX or JPEG files into a temporary folder that is moved into place when complete;
16-bit frames stay 16-bit in PNG, TIFF and DPX.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import OutputError, SourceError, StreamCopyError, UsageError
from .color import FROM_RGB_THREADS, rgb_frame, to_rgb
from .frame import Frame
from .paths import AtomicOutput, same_file
from .probe import VideoInfo, bit_depth, check_size
from .streamcopy import StreamNote, Window

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".dpx", ".jpg", ".jpeg", ".bmp", ".exr")
DEFAULT_PATTERN = "frame_%06d.png"
_PATTERN = re.compile(r"%(0?\d*)d")
# Encoder and its 8-bit / 16-bit RGB input per output suffix (JPEG has no 16-bit form).
_IMAGE_CODECS = {
    ".png": ("png", "rgb24", "rgb48be"),
    ".tif": ("tiff", "rgb24", "rgb48le"),
    ".tiff": ("tiff", "rgb24", "rgb48le"),
    ".dpx": ("dpx", "rgb24", "rgb48le"),
    ".jpg": ("mjpeg", "yuvj444p", None),
    ".jpeg": ("mjpeg", "yuvj444p", None),
}


def is_sequence(path: str | os.PathLike[str]) -> bool:
    """True for a numbered pattern, an existing folder, or a path ending in a separator."""
    text = os.fspath(path)
    return bool(_PATTERN.search(Path(text).name)) or text.endswith(os.sep) or Path(text).is_dir()


def _split(path: Path) -> tuple[Path, str]:
    """(folder, pattern) of a sequence path; a bare folder gets :data:`DEFAULT_PATTERN`."""
    if _PATTERN.search(path.name):
        return path.parent, path.name
    return path, DEFAULT_PATTERN


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    head, _, tail = _PATTERN.split(pattern, maxsplit=1)
    return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + "$")


def _natural_key(path: Path) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def sequence_files(source: Path) -> list[Path]:
    """The images of a pattern (ordered by number) or of a folder (natural name order)."""
    if _PATTERN.search(source.name):
        folder, regex = source.parent, _pattern_regex(source.name)
        if not folder.is_dir():
            raise SourceError(f"{source}: folder {folder} does not exist")
        numbered = [(int(m.group(1)), p) for p in folder.iterdir() if (m := regex.match(p.name))]
        files = [p for _, p in sorted(numbered)]
    elif source.is_dir():
        files = sorted((p for p in source.iterdir()
                        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                       key=_natural_key)
    else:
        raise SourceError(f"{source}: not an image pattern (frame_%06d.png) or a folder")
    if not files:
        raise SourceError(f"{source}: no images found ({', '.join(IMAGE_SUFFIXES)})")
    _check_numbering(source, files)
    return files


def _check_numbering(source: Path, files: list[Path]) -> None:
    """Refuse a numbered sequence with a hole: every later frame would come one frame early,
    out of step with the sound and the timecode. Names without one shared numbering pass."""
    parts = [re.fullmatch(r"(.*?)(\d+)(\D*)", p.name) for p in files]
    if any(m is None for m in parts) or len({(m[1], m[3]) for m in parts if m}) != 1:
        return
    numbers = [int(m[2]) for m in parts if m]
    holes = [(a, b) for a, b in itertools.pairwise(numbers) if b != a + 1]
    if holes:
        a, b = holes[0]
        missing = sum(b - a - 1 for a, b in holes)
        raise SourceError(f"{source}: {missing} frame(s) missing from the numbering, the first "
                          f"after {files[numbers.index(a)].name} (next is number {b})")


def _decode_image(path: Path) -> tuple[Any, str]:
    """The picture of one image file and the codec it was stored with."""
    try:
        with av.open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            check_size(path, ctx.width or 0, ctx.height or 0)
            for frame in container.decode(video=0):
                check_size(path, frame.width, frame.height)
                return frame, ctx.name
    except (av.FFmpegError, IndexError) as exc:
        raise SourceError(f"{path}: not a readable image ({exc})") from exc
    raise SourceError(f"{path}: not a readable image")


class SequenceSource:
    """Frames of an image sequence at a user-given frame rate."""

    def __init__(self, source: Path, fps: Fraction) -> None:
        self.files = sequence_files(source)
        first, codec = _decode_image(self.files[0])
        self.info = VideoInfo(
            path=source, container="image2", codec=codec, width=first.width, height=first.height,
            pix_fmt=first.format.name, bit_depth=bit_depth(first.format.name),
            time_base=1 / fps, avg_rate=fps, real_rate=fps, frame_count=len(self.files),
            duration=float(len(self.files) / fps), is_sequence=True,
        )

    def frames(self, lo: int | None, hi: int | None) -> Iterator[tuple[int, np.ndarray]]:
        """(pts, pixels) for positions ``lo`` up to ``hi`` (exclusive); pts is the position."""
        size = (self.info.width, self.info.height)
        converter = VideoReformatter()
        count = len(self.files)
        for pts in range(lo or 0, count if hi is None else min(hi, count)):
            path = self.files[pts]
            image, _ = _decode_image(path)
            if (image.width, image.height) != size:
                raise SourceError(f"{path}: is {image.width}x{image.height}; the sequence is "
                                  f"{size[0]}x{size[1]}")
            yield pts, to_rgb(converter, image, deep=self.info.deep)

    def close(self) -> None:
        """Nothing stays open between images."""


class SequenceWriter:
    """Writes frames as numbered images (from 1) into a folder, moved into place at the end.

    A rotated source (phone video) is written upright, as images have no display matrix.
    """

    def __init__(self, dst: Path, info: VideoInfo, *, overwrite: bool, strict: bool) -> None:
        self.folder, self.pattern = _split(dst)
        suffix = Path(self.pattern).suffix.lower()
        if suffix not in _IMAGE_CODECS:
            raise UsageError(f"{dst}: image sequences are written as "
                             f"{', '.join(_IMAGE_CODECS)}; got {suffix or 'no suffix'!r}")
        self.codec, fmt8, fmt16 = _IMAGE_CODECS[suffix]
        self.pix_fmt = fmt16 if info.bit_depth > 8 and fmt16 else fmt8
        if info.bit_depth > 8 and not fmt16:
            log.warning("%s: %s keeps 8 bits; the %d-bit frames are reduced",
                        dst, suffix, info.bit_depth)
        self.notes = [StreamNote(s.index, s.kind, s.codec, "image sequences hold pictures only")
                      for s in info.other_streams]
        if strict and self.notes:
            raise StreamCopyError(f"{dst}: " + "; ".join(map(str, self.notes)))
        for note in self.notes:
            log.warning("%s: %s", info.path, note)
        self._check(info, overwrite)
        # Images cannot carry a display matrix, so they are written upright.
        self._turns = (info.rotation // 90) % 4 if info.rotation % 90 == 0 else 0
        if info.rotation % 90:
            log.warning("%s: rotation %d is not a quarter turn; images keep the stored "
                        "orientation", dst, info.rotation)
        self.count = 0
        self._target = AtomicOutput(self.folder, overwrite=overwrite, folder=True)

    def _check(self, info: VideoInfo, overwrite: bool) -> None:
        folder = self.folder
        if (info.is_sequence and info.path is not None
                and same_file(folder, _split(info.path)[0])):
            raise OutputError(f"{folder}: is the input sequence's folder; choose another folder")
        if not folder.parent.is_dir():
            raise OutputError(f"{folder}: parent folder {folder.parent} does not exist")
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder}: exists and is not a folder")
        if folder.is_dir() and not overwrite:
            regex = _pattern_regex(self.pattern)
            clash = next((p for p in folder.iterdir() if regex.match(p.name)), None)
            if clash is not None:
                raise OutputError(f"{clash}: already exists; pass overwrite=True "
                                  "(--overwrite) to replace the sequence")

    def begin(self, window: Window) -> None:
        """Image files carry no timing; nothing to prepare."""

    def put(self, frame: Frame, pts: int, duration: int) -> None:
        """Encode one image file (timing is implied by its number)."""
        pixels = np.ascontiguousarray(np.rot90(frame.pixels, self._turns))
        image = rgb_frame(pixels)
        # an image codec's context is a video one
        ctx = cast("av.VideoCodecContext", av.CodecContext.create(self.codec, "w"))
        ctx.width, ctx.height = image.width, image.height
        ctx.pix_fmt = self.pix_fmt
        ctx.time_base = Fraction(1, 25)
        ctx.thread_count = 1
        if image.format.name != self.pix_fmt:
            image = image.reformat(format=self.pix_fmt, threads=FROM_RGB_THREADS)
        self.count += 1
        name = self.pattern % self.count
        try:
            data = b"".join(bytes(p) for p in [*ctx.encode(image), *ctx.encode(None)])
            (self._target.tmp / name).write_bytes(data)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"{self.folder / name}: cannot write image ({exc})") from exc

    def finish(self) -> None:
        """Every image is written (into the hidden folder beside the destination)."""

    def commit(self) -> None:
        """Move the images into place. Into an existing folder, the old sequence's images go
        first and the new ones move in last-first, so an interrupted move never leaves what
        looks like a finished sequence (its first image comes last)."""
        regex = _pattern_regex(self.pattern)
        if self.folder.is_dir():
            for old in self.folder.iterdir():
                if regex.match(old.name):
                    old.unlink()
        self._target.commit()

    def abort(self) -> None:
        self._target.discard()
