"""``vidrestore restore``: restore every face of a video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..faces.options import FaceOptions
from ..io.writer import WriterOptions
from ..restore.options import RestoreOptions
from .optgen import add_options, build, fps_option


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Output video (or image-sequence pattern).")
@add_options(RestoreOptions)
@add_options(FaceOptions, exclude=("causal",))
@add_options(WriterOptions)
@fps_option
@click.option("--start", default=None, help="Start time (seconds or [HH:]MM:SS[.fff]).")
@click.option("--end", default=None, help="End time (seconds or [HH:]MM:SS[.fff]).")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Also write the face tracks as JSON (the `track` command's schema).")
@click.option("--compare", type=click.Path(path_type=Path), default=None,
              help="Also write input and output side by side, for reviewing.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def restore(input: Path, output: Path, fps: str | None, start: str | None, end: str | None,
            report: Path | None, compare: Path | None, progress: bool, as_json: bool,
            **values: Any) -> None:
    """Restore the faces in INPUT and write OUTPUT with the same sound, timing and format."""
    from ..restore.api import restore_video

    options = build(RestoreOptions, values)
    faces = build(FaceOptions, values)
    writer = build(WriterOptions, values)
    summary = restore_video(input, output, options, faces=faces, writer=writer, start=start,
                            end=end, report=report, compare=compare, progress=progress,
                            fps=fps)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    per_track = ", ".join(f"#{k}: {v}" for k, v in sorted(summary.faces_restored.items()))
    click.echo(
        f"{summary.output}: {summary.frames} frames, "
        f"{sum(summary.faces_restored.values())} faces restored in {summary.tracks} tracks"
        + (f" ({per_track})" if per_track else "")
        + f", {summary.seconds:.1f} s ({summary.fps:.2f} fps, {summary.device} {summary.dtype})"
    )
