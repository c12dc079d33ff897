"""``restore_video``: a video in, the same video out with every face restored.

A short composition of public pieces: reader → :class:`Restorer` → writer, with the reader and
the writer in their own threads so decoding, inference and encoding overlap. The output (and the
optional side-by-side comparison) only appears at its path once complete.

A phone video stored sideways is restored in its display orientation (faces are found and
pasted in the upright picture) and written as stored, with the source's display matrix, so it
displays as the source does; the comparison is written upright, without a matrix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..concurrency import BackgroundSink, prefetch
from ..errors import UsageError
from ..faces import FaceOptions
from ..io import VideoReader, VideoWriter, WriterOptions
from ..io.frame import Frame
from ..io.orientation import display_facts, quarter_turns, upright_frame, upright_size
from ..io.paths import AtomicOutput, Staged, check_side_outputs, discard_on_error
from ..io.probe import VideoInfo
from ..weights import WeightStore
from .options import RestoreOptions
from .pipeline import Restorer

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]


@dataclass
class RestoreSummary:
    """What a restore run did."""

    output: str
    frames: int
    faces_restored: dict[int, int] = field(default_factory=dict)
    tracks: int = 0
    seconds: float = 0.0
    device: str = ""
    dtype: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["fps"] = round(self.fps, 3)
        d["faces_restored"] = {str(k): v for k, v in self.faces_restored.items()}
        return d


def side_by_side(a: Frame, b: Frame, turns: int = 0) -> Frame:
    """Source and restored frame next to each other (for reviewing), upright: ``turns``
    counter-clockwise quarter turns make the frames so."""
    a, b = upright_frame(a, turns), upright_frame(b, turns)
    return b.with_pixels(np.concatenate([a.pixels, b.pixels], axis=1))


def side_by_side_info(info: VideoInfo, turns: int = 0) -> VideoInfo:
    """The facts the side-by-side video is written with: twice as wide, and upright (no
    display matrix) when ``turns`` turned the frames."""
    width, height = upright_size(info.width, info.height, turns)
    if not turns:
        return dataclasses.replace(info, width=2 * width)
    sar = info.sample_aspect_ratio
    return dataclasses.replace(info, width=2 * width, height=height, rotation=0,
                               display_matrix=None,
                               sample_aspect_ratio=1 / sar if sar and turns % 2 else sar)


def restore_video(
    src: str | Path,
    dst: str | Path,
    options: RestoreOptions | None = None,
    *,
    faces: FaceOptions | None = None,
    writer: WriterOptions | None = None,
    start: str | float | None = None,
    end: str | float | None = None,
    report: str | Path | None = None,
    compare: str | Path | None = None,
    progress: bool = True,
    progress_callback: ProgressCallback | None = None,
    restorer: Restorer | None = None,
    fps: str | float | None = None,
    store: WeightStore | None = None,
) -> RestoreSummary:
    """Restore every face of ``src`` into ``dst``, keeping audio, timing and format.

    Args:
        src: input video file or image sequence.
        dst: output path; refused if it exists unless ``writer.overwrite``.
        options: restore options; ``faces``: detection/tracking options; ``writer``: codec,
            quality and overwrite options of the output.
        start, end: process only this range (seconds or timecode); audio follows the range.
        report: also write the tracks report (``tracks.json`` schema) here.
        compare: also write the input and output side by side here.
        progress: show a progress bar (ignored when ``progress_callback`` is given).
        progress_callback: called as ``(frames_done, frames_total_or_None)``.
        restorer: reuse an already built :class:`Restorer` (its model and detector); its
            ``rotation`` is set to the source's.
        fps: frame rate of an image-sequence ``src`` (required for one).
        store: where model files come from (default: the store the environment names).

    Returns:
        A :class:`RestoreSummary`.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    writer = writer or WriterOptions()
    check_side_outputs(src, ("the output", Path(dst)),
                       [("--compare", compare), ("--report", report)], overwrite=writer.overwrite)
    staged: list[Staged] = []
    with contextlib.ExitStack() as stack:
        stack.push(discard_on_error(staged))
        reader = stack.enter_context(VideoReader(src, start=start, end=end, fps=fps))
        info = reader.info
        out = stack.enter_context(VideoWriter(dst, source=info, options=writer, start=start,
                                              end=end))
        turns = quarter_turns(info.rotation, info.path)
        side = None
        if compare is not None:
            # committed after the main output, so a failed main output leaves no side file
            side = stack.enter_context(VideoWriter(compare, source=side_by_side_info(info, turns),
                                                   options=writer, start=start, end=end,
                                                   commit=False))
            staged.append(side)
        if restorer is None:
            restorer = Restorer(options, faces, keep_tracks=report is not None, store=store)
        restorer.rotation = 90 * turns  # (a rotation that is no quarter turn was warned of)
        total = reader.expected_frames
        bar = stack.enter_context(tqdm(total=total, unit="frame", desc="restore",
                                       # None: none when stderr is not a terminal
                                       disable=None if progress and progress_callback is None
                                       else True,
                                       dynamic_ncols=True))

        def write(pair: tuple[Frame, Frame]) -> None:
            out.write(pair[1])
            if side is not None:
                side.write(side_by_side(*pair, turns))

        sink: BackgroundSink[tuple[Frame, Frame]] = stack.enter_context(
            BackgroundSink(write, size=4, name="writer"))
        for n, pair in enumerate(restorer.process_pairs(prefetch(reader, 4, "reader")), 1):
            sink.put(pair)
            bar.update(1)
            if n % 10 == 0:
                bar.set_postfix(faces=sum(restorer.faces_restored.values()), refresh=False)
            if progress_callback is not None:
                progress_callback(n, total)
        chosen = set(restorer.options.faces or ())
        if chosen and not chosen & restorer.track_ids:
            found = ", ".join(map(str, sorted(restorer.track_ids))) or "none"
            ids = ", ".join(map(str, sorted(chosen)))
            raise UsageError(f"--faces: none of the chosen tracks ({ids}) appeared (tracks "
                             f"found: {found}); nothing written")
        if report is not None:
            # staged before the videos are committed, so a report that cannot be written
            # leaves no video behind either
            staged.append(stage_report(report, info, restorer, overwrite=writer.overwrite))
    for target in staged:
        target.commit()
    _warn_unseen(restorer)
    summary = RestoreSummary(
        output=str(dst), frames=restorer.frames_done, faces_restored=restorer.faces_restored,
        tracks=len(restorer.faces_restored), seconds=time.perf_counter() - t0,
        device=str(restorer.device), dtype=str(restorer.dtype).replace("torch.", ""))
    return summary


def _warn_unseen(restorer: Restorer) -> None:
    """Say when IDs chosen with ``faces`` or given settings never appeared (a typo, or another
    video's IDs)."""
    found = ", ".join(map(str, sorted(restorer.track_ids))) or "none"
    for option, unseen in restorer.unseen_tracks().items():
        log.warning("--%s: track %s never appeared (tracks found: %s)",
                    option.replace("_", "-"), ", ".join(map(str, unseen)), found)


def stage_report(path: str | Path, info: object, restorer: Restorer, *,
                 overwrite: bool) -> AtomicOutput:
    """The tracks report of a restore run, in the ``track`` command's schema, staged beside
    ``path`` for the caller to commit."""
    from ..faces.report import stage_tracks_report

    return stage_tracks_report(path, info, restorer.tracks, pts=restorer.frame_pts,
                               overwrite=overwrite, **display_facts(info))
