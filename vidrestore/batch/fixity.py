"""Fixity: prove what a batch wrote, in formats other tools can check.

* ``<output>.sha256``: ``sha256sum`` format (``HASH  NAME``), one line per file (one for a video,
  one per image of a sequence); ``sha256sum -c`` in the output folder verifies it.
* ``<output>.framemd5``: the MD5 of every decoded video frame's raw planes with its pts, in the
  layout of FFmpeg's ``framemd5`` muxer, so ``ffmpeg -i OUTPUT -map 0:v -f framemd5 -`` prints
  the same checksums for a video and a changed frame is found without a reference copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import OutputError, SourceError
from ..io.digest import sha256_file, sha256_listing
from ..io.paths import write_text_atomic


def sequence_files(folder: Path) -> list[Path]:
    """Files of an output image sequence (a folder), in name order, hidden files left out."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def sha256_tree(files: Iterable[Path], root: Path) -> tuple[str, list[tuple[str, str]]]:
    """(one digest for the whole set, per-file ``(hash, relative name)``) of image files
    (:func:`~vidrestore.io.digest.sha256_listing` over names relative to ``root``)."""
    return sha256_listing((p, p.relative_to(root).as_posix()) for p in files)


def output_digest(path: Path) -> str:
    """The recorded hash of a job's output: a file's SHA-256, or a sequence folder's set digest
    (over names relative to the folder's parent, as in its ``.sha256`` sidecar)."""
    if path.is_dir():
        return sha256_tree(sequence_files(path), path.parent)[0]
    return sha256_file(path)


@dataclass(frozen=True)
class FrameSum:
    """One line of a framemd5 listing."""

    stream: int
    dts: int
    pts: int
    duration: int
    size: int
    md5: str

    def line(self) -> str:
        return (f"{self.stream}, {self.dts:>10}, {self.pts:>10}, {self.duration:>8}, "
                f"{self.size:>8}, {self.md5}")


@dataclass(frozen=True)
class FrameListing:
    """framemd5 of one video stream: header facts plus one :class:`FrameSum` per frame."""

    time_base: Fraction
    width: int
    height: int
    pix_fmt: str
    sar: Fraction
    frames: tuple[FrameSum, ...]

    def text(self) -> str:
        """The listing in FFmpeg's framemd5 layout (version 2)."""
        tb = self.time_base
        sar = self.sar if self.sar else Fraction(0, 1)
        head = [
            "#format: frame checksums", "#version: 2", "#hash: MD5",
            f"#tb 0: {tb.numerator}/{tb.denominator}", "#media_type 0: video",
            "#codec_id 0: rawvideo", f"#dimensions 0: {self.width}x{self.height}",
            f"#sar 0: {sar.numerator}/{sar.denominator}",
            "#stream#, dts,        pts, duration,     size, hash",
        ]
        return "\n".join([*head, *(f.line() for f in self.frames)]) + "\n"


def _row_bytes(frame: Any) -> list[int]:
    """Bytes per row of each plane without line padding (planar and packed RGB formats)."""
    fmt = frame.format
    per_plane: dict[int, int] = {}
    for c in fmt.components:
        per_plane[c.plane] = per_plane.get(c.plane, 0) + (c.bits + 7) // 8
    if len(per_plane) != len(frame.planes):
        raise OutputError(f"framemd5: pixel format {fmt.name} has an unsupported plane layout")
    return [plane.width * per_plane[i] for i, plane in enumerate(frame.planes)]


def frame_md5(frame: Any) -> tuple[str, int]:
    """(MD5, byte count) of a decoded frame's planes, packed without padding (as rawvideo)."""
    md5 = hashlib.md5()
    size = 0
    for plane, row in zip(frame.planes, _row_bytes(frame), strict=True):
        data = memoryview(plane)
        stride = plane.line_size
        if stride == row:
            chunk = data[: row * plane.height]
            md5.update(chunk)
        else:
            for y in range(plane.height):
                md5.update(data[y * stride : y * stride + row])
        size += row * plane.height
    return md5.hexdigest(), size


def _decoded(path: Path) -> Iterator[tuple[Any, Any]]:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for packet in container.demux(stream):
                for frame in packet.decode():
                    yield stream, frame
    except (av.FFmpegError, IndexError) as exc:
        raise SourceError(f"{path}: cannot decode for checksums ({exc})") from exc


def video_framemd5(path: Path) -> FrameListing:
    """Decode the first video stream of ``path`` and checksum every frame."""
    sums: list[FrameSum] = []
    first: Any = None
    stream: Any = None
    for decoded_stream, frame in _decoded(path):
        if first is None:
            first, stream = frame, decoded_stream
        md5, size = frame_md5(frame)
        duration = frame.duration or 1
        pts = frame.pts if frame.pts is not None else (sums[-1].pts + 1 if sums else 0)
        sums.append(FrameSum(0, pts, pts, duration, size, md5))
    if first is None:
        raise SourceError(f"{path}: has no decodable video frame")
    sar = stream.codec_context.sample_aspect_ratio or Fraction(1, 1)
    return FrameListing(Fraction(stream.time_base), first.width, first.height, first.format.name,
                        Fraction(sar), tuple(sums))


def sequence_framemd5(files: Iterable[Path]) -> FrameListing:
    """Checksum the decoded picture of every image; pts counts images (time base 1/1)."""
    sums: list[FrameSum] = []
    first: Any = None
    for n, path in enumerate(files):
        for _, frame in _decoded(path):
            first = first or frame
            md5, size = frame_md5(frame)
            sums.append(FrameSum(0, n, n, 1, size, md5))
            break
    if first is None:
        raise SourceError("no image to checksum")
    return FrameListing(Fraction(1), first.width, first.height, first.format.name,
                        Fraction(1, 1), tuple(sums))


@dataclass(frozen=True)
class Fixity:
    """What was proven about one output: its digest and where the sidecars are."""

    digest: str
    sha256_sidecar: Path
    framemd5_sidecar: Path | None
    frames: int


def write_fixity(output: Path, *, framemd5: bool = True,
                 listing: FrameListing | None = None) -> Fixity:
    """Write ``<output>.sha256`` and (unless disabled) ``<output>.framemd5`` beside ``output``.

    ``listing`` may carry checksums already computed (per segment, as frames were written);
    otherwise the output is decoded here.
    """
    sha_path = output.with_name(output.name + ".sha256")
    md5_path = output.with_name(output.name + ".framemd5")
    if output.is_dir():
        files = sequence_files(output)
        digest, lines = sha256_tree(files, output.parent)
        if framemd5 and listing is None:
            listing = sequence_framemd5(files)
    else:
        digest = sha256_file(output)
        lines = [(digest, output.name)]
        if framemd5 and listing is None:
            listing = video_framemd5(output)
    write_text_atomic(sha_path, "".join(f"{h}  {n}\n" for h, n in lines))
    frames = len(listing.frames) if listing is not None else 0
    if listing is not None:
        write_text_atomic(md5_path, listing.text())
    else:  # one left from an earlier output of this name would not describe this one
        md5_path.unlink(missing_ok=True)
    return Fixity(digest, sha_path, md5_path if listing is not None else None, frames)
