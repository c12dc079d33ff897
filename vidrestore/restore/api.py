"""``restore_video``: a video in, the same video out with every face restored.

A short composition of public pieces: reader → :class:`Restorer` → writer, with the reader and
the writer in their own threads so decoding, inference and encoding overlap. The output (and the
optional side-by-side comparison) only appears at its path once complete.

A phone video stored sideways is restored in its display orientation (faces are found and
pasted in the upright picture) and written as stored, with the source's display matrix, so it
displays as the source does; the comparison is written upright, without a matrix.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..concurrency import prefetch
from ..errors import UsageError
from ..faces import FaceOptions
from ..io import VideoWriter, WriterOptions
from ..io.frame import Frame
from ..io.orientation import display_facts, upright_frame, upright_size
from ..io.paths import AtomicOutput, check_side_outputs
from ..io.probe import VideoInfo
from ..io.run import ProgressCallback, VideoPass
from ..upscale import scaled_info
from ..upscale.geometry import check_output_size
from ..weights import WeightStore
from .options import RestoreOptions
from .pipeline import Restorer

log = logging.getLogger(__name__)



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
    counter-clockwise quarter turns make the frames so. A smaller source (an upscaled output)
    is enlarged with Lanczos to the output's size."""
    a, b = upright_frame(a, turns), upright_frame(b, turns)
    left = a.pixels
    if a.size != b.size:
        left = cv2.resize(left, b.size, interpolation=cv2.INTER_LANCZOS4)
    return b.with_pixels(np.concatenate([left, b.pixels], axis=1))


def side_by_side_info(info: VideoInfo, turns: int = 0) -> VideoInfo:
    """The facts the side-by-side video is written with (``info``: the output's): twice as
    wide, and upright (no display matrix) when ``turns`` turned the frames."""
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
    t0 = time.perf_counter()
    writer = writer or WriterOptions()
    check_side_outputs(src, ("the output", Path(dst)),
                       [("--compare", compare), ("--report", report)], overwrite=writer.overwrite)
    owned: Restorer | None = None
    try:
        scale = (restorer.options if restorer is not None else options or RestoreOptions()
                 ).upscale
        # At the source's size only the faces' boxes need the exact RGB conversion: the rest of
        # each picture goes to the encoder as the decoder gave it (a comparison needs it all).
        lazy = scale == 1 and compare is None
        with VideoPass(src, start=start, end=end, fps=fps, desc="restore", progress=progress,
                       progress_callback=progress_callback, lazy_rgb=lazy) as run:
            info, turns = run.info, run.turns
            check_output_size(info.width, info.height, scale)
            out_info = scaled_info(info, scale)
            out = run.writer(dst, options=writer, source=out_info)
            side = None
            if compare is not None:
                side = run.writer(compare, options=writer,
                                  source=side_by_side_info(out_info, turns), side=True)
            if restorer is None:
                restorer = Restorer(options, faces, keep_tracks=report is not None, store=store)
                owned = restorer
            restorer.rotation = 90 * turns  # (a rotation that is no quarter turn was warned of)
            warn_background_cost(restorer, info.width, info.height, run.reader.expected_frames)
            _frames(run, restorer, out, side, turns)
            chosen = set(restorer.options.faces or ())
            if chosen and not chosen & restorer.track_ids:
                found = ", ".join(map(str, sorted(restorer.track_ids))) or "none"
                ids = ", ".join(map(str, sorted(chosen)))
                raise UsageError(f"--faces: none of the chosen tracks ({ids}) appeared (tracks "
                                 f"found: {found}); nothing written")
            if report is not None:
                run.stage(stage_report(report, info, restorer, overwrite=writer.overwrite))
    finally:
        if owned is not None:
            owned.close()
    assert restorer is not None
    _warn_unseen(restorer)
    summary = RestoreSummary(
        output=str(dst), frames=restorer.frames_done, faces_restored=restorer.faces_restored,
        tracks=len(restorer.faces_restored), seconds=time.perf_counter() - t0,
        device=str(restorer.device), dtype=str(restorer.dtype).replace("torch.", ""))
    return summary


def _frames(run: VideoPass, restorer: Restorer, out: VideoWriter, side: VideoWriter | None,
            turns: int) -> None:
    """Every frame through the restorer into the writers (encoding on its own thread)."""
    def write(pair: tuple[Frame, Frame]) -> None:
        out.write(pair[1])
        if side is not None:
            side.write(side_by_side(*pair, turns))

    sink = run.sink(write, "writer")
    for n, pair in enumerate(restorer.process_pairs(prefetch(run.reader, 4, "reader")), 1):
        sink.put(pair)
        if n % 10 == 0:
            run.step(faces=sum(restorer.faces_restored.values()))
        else:
            run.step()


def warn_background_cost(restorer: Restorer, width: int, height: int,
                         frames: int | None) -> None:
    """One line before a long run: a large background model on the CPU, with the time it
    will take (measured on a probe)."""
    up = restorer.upscaler
    if up.model is None or up.model.device.type != "cpu" or not up.model.large:
        return
    per = up.seconds_per_frame(width, height)
    total = f", about {_duration(per * frames)} for {frames} frames" if frames else ""
    log.warning("--background %s on the CPU: about %.1f s a frame at %dx%d%s (a GPU, "
                "realesr-animevideov3 or lanczos is much faster)", up.name, per, width, height,
                total)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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
