"""``vidrestore track``: find and follow the faces of a video; preview video, tracks.json and a
contact sheet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..faces.options import FaceOptions
from .optgen import add_options, build, fps_option


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", "preview", type=click.Path(path_type=Path), default=None,
              help="Preview video: every track's box, ID and landmarks drawn; same sound and "
              "timing as INPUT.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Write the face tracks as JSON (tracks.json schema 1).")
@click.option("--sheet", type=click.Path(path_type=Path), default=None,
              help="Write a contact sheet (PNG): one tile per track with its sharpest frontal "
              "face, ID, frame range and notes, to pick the IDs for `restore --faces`.")
@add_options(FaceOptions, exclude=("causal",))
@fps_option
@click.option("--start", default=None, help="Start time (seconds or [HH:]MM:SS[.fff]).")
@click.option("--end", default=None, help="End time (seconds or [HH:]MM:SS[.fff]).")
@click.option("--device", default="auto", show_default=True,
              help="Where RetinaFace runs: auto, cpu, cuda or cuda:N (YuNet uses the CPU).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the track summary as JSON.")
def track(input: Path, preview: Path | None, report: Path | None, sheet: Path | None,
          fps: str | None, start: str | None, end: str | None, device: str, overwrite: bool,
          progress: bool, as_json: bool, **values: Any) -> None:
    """Find, follow and steady the faces of INPUT; write a preview, a tracks report and/or a
    contact sheet.

    The track IDs are the ones `vidrestore restore --faces` selects.
    """
    from ..faces.api import track_video

    if preview is None and report is None and sheet is None:
        raise click.UsageError("nothing to write: give -o PREVIEW.mp4, --report FILE and/or "
                               "--sheet FILE.png")
    result = track_video(input, preview, report, build(FaceOptions, values), start=start,
                         end=end, progress=progress, overwrite=overwrite, device=device,
                         fps=fps, sheet=sheet)
    summary: dict[str, dict[str, Any]] = {str(t.id): {"frames": len(t.frames),
                           "first": t.frames[0].frame, "last": t.frames[-1].frame,
                           "bridged": sum(f.interpolated for f in t.frames),
                           "alignment": t.alignment(), "reason": t.reason}
               for t in result.tracks}
    if as_json:
        click.echo(json.dumps({"tracks": summary, "preview": preview and str(preview),
                               "report": report and str(report),
                               "sheet": sheet and str(sheet)}, indent=2))
        return
    click.echo(f"{len(result.tracks)} face track(s) in {input}")
    for tid, s in summary.items():
        a = s["alignment"]
        steady = "" if a["jitter_reduction"] is None else f", {a['jitter_reduction']}x steadier"
        away = ("" if a["offset_p95"] is None
                else f", lasting offset from the detections {a['offset_p95']} px (p95)")
        click.echo(f"  #{tid}: frames {s['first']}-{s['last']} ({s['frames']} frames, "
                   f"{s['bridged']} bridged{steady}{away}"
                   f"{', DOUBTFUL alignment' if a['doubtful'] else ''})")
        if s["reason"] is not None:
            click.echo(f"      left alone: {s['reason']}")
    for label, path in (("preview", preview), ("report", report), ("sheet", sheet)):
        if path is not None:
            click.echo(f"{label}: {path}")
