"""``track_video``: find, follow and steady the faces of a video, without restoring them.

Reader → :class:`~vidrestore.faces.FaceStream` (detector, cuts, tracker, smoother) → a preview
video with every track drawn (same sound and timing as the source), the ``tracks.json``
report and a contact sheet (one tile per track, :mod:`vidrestore.faces.sheet`). The track IDs
it reports are the ones ``restore --faces`` selects.

A video stored sideways (a phone's display rotation) is tracked upright: the report's boxes and
landmarks are in the displayed picture (its ``video.coordinates``), the sheet's faces stand
upright, and the preview is drawn upright and written as stored, with the source's matrix.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path

from ..concurrency import prefetch
from ..io import WriterOptions
from ..io.frame import Frame
from ..io.orientation import display_facts, stored, upright_frame
from ..io.paths import check_side_outputs
from ..io.run import ProgressCallback, VideoPass
from ..weights import WeightStore
from . import FaceDetector, FaceOptions, FaceStream, FrameFaces, create_detector
from .draw import draw_faces
from .report import ReportCollector, TrackReport
from .sheet import SheetCollector, check_sheet_path, render_sheet, stage_sheet

log = logging.getLogger(__name__)


def track_video(
    src: str | os.PathLike[str],
    preview: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    options: FaceOptions | None = None,
    start: str | float | None = None,
    end: str | float | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
    writer: WriterOptions | None = None,
    detector: FaceDetector | None = None,
    device: str = "auto",
    progress_callback: ProgressCallback | None = None,
    fps: str | float | None = None,
    store: WeightStore | None = None,
    sheet: str | os.PathLike[str] | None = None,
) -> TrackReport:
    """Track the faces of ``src``; optionally write a preview video, a ``tracks.json`` and a
    contact sheet.

    Args:
        src: input video file or image sequence.
        preview: where to write the video with boxes, IDs and landmarks drawn (audio and
            timing copied from ``src``); ``None`` for none.
        report: where to write the tracks report (schema in :mod:`vidrestore.faces.report`).
        options: detection, tracking and smoothing options (default ``FaceOptions()``).
        start, end: track only this range (seconds or timecode).
        progress: show a progress bar (ignored when ``progress_callback`` is given).
        overwrite: replace existing ``preview``/``report``/``sheet`` files.
        writer: encoding options of the preview (its ``overwrite`` is set from ``overwrite``).
        detector: an already built detector (else made from ``options.detector``).
        device: where RetinaFace runs (``auto``: a GPU when there is one).
        progress_callback: called as ``(frames_done, frames_total_or_None)``.
        fps: frame rate of an image-sequence ``src`` (required for one).
        store: where the detector's model file comes from (default: the store the environment
            names).
        sheet: where to write the contact sheet (a PNG): per track, its sharpest frontal face
            as the restorer aligns it, with ID, frame range and notes (doubtful alignment, a
            small face, many bridged frames); ``None`` for none.

    Returns:
        The :class:`~vidrestore.faces.report.TrackReport` (also written to ``report``).

    Raises:
        SourceError: ``src`` cannot be read. OutputError: an output exists (without
        ``overwrite``) or cannot be written. WeightsError: the detector's model is missing.
    """
    options = options or FaceOptions()
    report_path = Path(report) if report is not None else None
    sheet_path = Path(sheet) if sheet is not None else None
    check_side_outputs(src, None if preview is None else ("the preview", Path(preview)),
                       [("--report", report_path), ("--sheet", sheet_path)],
                       overwrite=overwrite)
    if sheet_path is not None:
        check_sheet_path(sheet_path)
    if detector is None:
        detector = create_detector(options.detector, options, device=device,
                                   store=store if store is not None else WeightStore.from_env())
    with VideoPass(src, start=start, end=end, fps=fps, desc="track", progress=progress,
                   progress_callback=progress_callback,
                   lazy_rgb=preview is None and sheet_path is None) as run:
        turns = run.turns
        stream = FaceStream(detector, options, turns=turns)
        collector = ReportCollector.for_video(run.info, **display_facts(run.info))
        tiles = SheetCollector() if sheet_path is not None else None
        write: Callable[[Frame], None] | None = None
        if preview is not None:
            opts = writer or WriterOptions()
            opts = dataclasses.replace(opts, overwrite=overwrite or opts.overwrite)
            write = run.sink(run.writer(preview, options=opts).write, "preview-writer").put

        def show(ff: FrameFaces) -> None:
            """Sheet and preview, from the upright picture the faces were found in."""
            shown = upright_frame(ff.frame, turns)
            if tiles is not None:
                tiles.add(FrameFaces(shown, ff.faces, ff.cut))
            if write is not None:
                drawn = draw_faces(shown.pixels, ff.faces)
                write(ff.frame.with_pixels(stored(drawn, turns)))

        def take(ready: list[FrameFaces]) -> None:
            for ff in ready:
                collector.add(ff)
                if tiles is not None or write is not None:
                    show(ff)
                run.step()

        for frame in prefetch(run.reader, 4, "reader"):
            take(stream.push(frame))
        take(stream.flush())
        result = collector.report()
        if report_path is not None:
            run.stage(result.stage(report_path, overwrite=overwrite))
        if sheet_path is not None and tiles is not None:
            picture = render_sheet(result, tiles.picks, _title(src),
                                   min_face=options.min_face)
            run.stage(stage_sheet(sheet_path, picture, overwrite=overwrite))
    _warn_doubtful(result)
    return result


def _title(src: str | os.PathLike[str]) -> str:
    """The input's name for the sheet's header (a sequence's pattern or folder name)."""
    return Path(src).name or os.fspath(src)


def _warn_doubtful(report: TrackReport) -> None:
    """One warning line per track whose smoothed points stay away from its detections."""
    for track in report.tracks:
        figures = track.alignment()
        if figures["doubtful"]:
            log.warning("track %d: alignment doubtful (the smoothed landmarks stay %.1f px from "
                        "the detections at p95, in 512-template px): check the preview",
                        track.id, figures["offset_p95"])
