"""A look before the long run: a few frames restored exactly as the whole run would restore them.

Faces are found, tracked and smoothed on every frame from the start of the input up to the last
chosen frame (as in the full run, so track IDs, landmarks and look-ahead are the same), but only
the faces the chosen frames depend on go through the network: the few frames before each one
that a repeated picture takes its faces from, in ``window`` mode the window around it, with
``recurrent`` mode (or face-parsing masks, which are averaged along each track) also ``WARMUP``
frames before it. In ``window`` and ``off`` modes with the template mask a preview frame equals
the full run's frame exactly; with ``recurrent`` (or parsing masks) the carried state starts
``WARMUP`` (``MASK_WARMUP``) frames early, so it is close but not equal.

Per chosen frame the source, the restored frame and both side by side are written as PNG
(16-bit for deep sources; upright, as the video displays), and ``preview.json`` gives the
times and an estimate of the whole run on this device.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError, UsageError
from ..faces import FaceOptions
from ..faces.cuts import HELD_LONGEST
from ..io import VideoReader
from ..io.frame import Frame
from ..io.orientation import quarter_turns, upright
from ..io.paths import AtomicOutput, check_output, discard_on_error
from ..io.probe import VideoInfo
from .options import RestoreOptions
from .pipeline import Restorer

WARMUP = 12
"""Frames restored before a chosen frame in recurrent mode, where each track carries its state:
after them the start of that state weighs under 1 % (0.65 ** 12 at the default gain 0.35)."""
MASK_WARMUP = 6
"""The same for face-parsing masks, averaged along each track half and half: 0.5 ** 6 < 2 %."""
MAX_FRAMES = 100


@dataclass(frozen=True)
class PreviewFrame:
    """One chosen frame and where its pictures are."""

    index: int
    time: float
    faces: int
    source: str
    restored: str
    side_by_side: str


@dataclass(frozen=True)
class PreviewSummary:
    """What a preview cost and what the whole run would."""

    frames: tuple[PreviewFrame, ...]
    seconds: float
    seconds_per_frame: float
    """The preview's wall time per chosen frame (reading and tracking up to it included)."""
    network_seconds: float
    faces_through_network: int
    frames_read: int
    frame_count: int | None
    estimated_seconds: float | None
    """The whole input with the same options on this device: every frame read and tracked as
    here, every face through the network at the cost measured here."""
    exact: bool
    """Whether each preview frame equals the full run's (else within the warm-up's margin)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def pick_frames(total: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over ``total`` frames (the middle of each part)."""
    if total <= 0:
        raise UsageError("--frames: the input's frame count is not known; give --at times")
    return sorted({min(total - 1, int((k + 0.5) * total / count)) for k in range(count)})


def preview_video(
    src: str | Path,
    out_dir: str | Path,
    options: RestoreOptions | None = None,
    *,
    faces: FaceOptions | None = None,
    count: int = 3,
    at: Sequence[float] | None = None,
    fps: str | float | None = None,
    overwrite: bool = False,
    restorer: Restorer | None = None,
) -> PreviewSummary:
    """Restore ``count`` frames spread over ``src`` (or the frames at the times ``at``, in
    seconds) into ``out_dir``; see the module docstring.

    Raises:
        UsageError: no frames to pick. SourceError: ``src`` cannot be read. OutputError: a
        picture exists (without ``overwrite``) or ``out_dir`` cannot be made.
    """
    if not 1 <= count <= MAX_FRAMES:
        raise UsageError(f"--frames: {count} is not between 1 and {MAX_FRAMES}")
    options = options or RestoreOptions()
    out = Path(out_dir)
    if not out.parent.is_dir():
        raise OutputError(f"{out}: its folder {out.parent} does not exist")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file; give a folder for the preview pictures")
    t0 = time.perf_counter()
    staged: list[AtomicOutput] = []
    made = not out.exists()
    with contextlib.ExitStack() as stack:
        if made:  # runs after the staged pictures are discarded (exit callbacks run LIFO)
            stack.callback(_remove_if_empty, out)
        stack.push(discard_on_error(staged))
        reader = stack.enter_context(VideoReader(src, fps=fps, lazy_rgb=True))
        info = reader.info
        chosen = _chosen(info, count, at)
        names = {i: _names(out, i) for i in chosen}
        if made:
            out.mkdir()
        for paths in names.values():
            for p in (*paths, out / "preview.json"):
                check_output(p, [Path(src)], overwrite=overwrite)
        if restorer is None:
            restorer = Restorer(options, faces, keep_tracks=True)
            stack.callback(restorer.close)
        turns = quarter_turns(info.rotation, info.path)
        restorer.rotation = 90 * turns
        restorer.only_frames = _needed(chosen, restorer)
        frames: list[PreviewFrame] = []
        read = 0
        pairs = restorer.process_pairs(_until(reader, chosen[-1] + restorer.face_stream.lookahead
                                              + _after(restorer)))
        for src_frame, restored in pairs:
            read = max(read, src_frame.index + 1)
            if src_frame.index in names:
                frames.append(_write(src_frame, restored, names[src_frame.index], info, staged,
                                     overwrite, _faces_on(restorer, src_frame.index), turns))
                if len(frames) == len(chosen):
                    break
        read = max(read, restorer.frames_in)
        engine = restorer.engine
        wall = time.perf_counter() - t0
        summary = PreviewSummary(
            frames=tuple(frames), seconds=wall, seconds_per_frame=wall / max(len(frames), 1),
            network_seconds=engine.network_seconds, faces_through_network=engine.decoded,
            frames_read=read, frame_count=info.frame_count,
            estimated_seconds=_estimate(wall, engine.network_seconds,
                                        engine.decoded, read, frames, info.frame_count,
                                        restorer.upscaler.seconds_per_frame(info.width,
                                                                            info.height)),
            exact=options.temporal != "recurrent" and restorer.masker.name == "template")
        report = AtomicOutput(out / "preview.json", overwrite=overwrite)
        staged.append(report)
        report.tmp.write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    for target in staged:
        target.commit()
    return summary


def _chosen(info: VideoInfo, count: int, at: Sequence[float] | None) -> list[int]:
    rate = info.avg_rate
    total = info.frame_count or 0
    if at:
        if not rate:
            raise UsageError("--at: the input's frame rate is not known")
        if not all(math.isfinite(float(t)) for t in at):
            raise UsageError("--at: times must be finite numbers of seconds")
        picked = sorted({round(float(t) * float(rate)) for t in at})
        if any(i < 0 for i in picked) or (total and picked[-1] >= total):
            raise UsageError(f"--at: a time is outside the input (0-{total / float(rate):.3f} s)")
        return picked
    return pick_frames(total, count)


def _after(restorer: Restorer) -> int:
    return restorer.options.window if restorer.options.temporal == "window" else 0


def _needed(chosen: list[int], restorer: Restorer) -> set[int]:
    """Frames whose faces the chosen frames' results depend on: a held frame's face is that of
    the picture its hold started on, up to ``HELD_LONGEST`` frames before it."""
    o = restorer.options
    before = HELD_LONGEST + (o.window if o.temporal == "window" else 0)
    if o.temporal == "recurrent":
        before += WARMUP
    elif restorer.masker.name != "template":
        before += MASK_WARMUP
    after = _after(restorer)
    return {i for t in chosen for i in range(max(0, t - before), t + after + 1)}


def _until(reader: VideoReader, last: int) -> Iterator[Frame]:
    for frame in reader:
        yield frame
        if frame.index >= last:
            return


def _names(out: Path, index: int) -> tuple[Path, Path, Path]:
    stem = f"frame_{index:06d}"
    return (out / f"{stem}.source.png", out / f"{stem}.restored.png", out / f"{stem}.side.png")


def _faces_on(restorer: Restorer, index: int) -> int:
    return sum(1 for fs in restorer.tracks.values() for f in fs if f.frame_index == index)


def _write(src: Frame, restored: Frame, paths: tuple[Path, Path, Path], info: VideoInfo,
           staged: list[AtomicOutput], overwrite: bool, faces: int, turns: int) -> PreviewFrame:
    before, after = upright(src.pixels, turns), upright(restored.pixels, turns)
    wide = before
    if before.shape != after.shape:  # an upscaled output: the source enlarged beside it
        wide = cv2.resize(before, after.shape[1::-1], interpolation=cv2.INTER_LANCZOS4)
    pictures = (before, after, np.concatenate([wide, after], 1))
    for path, pixels in zip(paths, pictures, strict=True):
        target = AtomicOutput(path, overwrite=overwrite)
        staged.append(target)
        if not cv2.imwrite(str(target.tmp), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"{path}: cannot write the picture")
    start = info.start_pts
    seconds = float((src.pts - start) * src.time_base)
    return PreviewFrame(src.index, round(seconds, 6), faces, *(str(p) for p in paths))


def _estimate(wall: float, network: float, faces: int, read: int,
              frames: list[PreviewFrame], total: int | None, background: float = 0.0
              ) -> float | None:
    """Reading and tracking every frame as here, plus every face of the video through the
    network at this run's cost per face (faces per frame as on the chosen frames), plus the
    background model's measured cost a frame (``background``: every frame gets one)."""
    if not total or not read:
        return None
    per_frame = max(wall - network, 0.0) / read
    per_face = network / faces if faces else 0.0
    faces_per_frame = sum(f.faces for f in frames) / max(len(frames), 1)
    return round(total * (per_frame + faces_per_frame * per_face + background), 1)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
