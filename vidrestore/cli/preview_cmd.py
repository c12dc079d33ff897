"""``vidrestore preview``: a few frames restored exactly as the whole run would, and its cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..faces.options import FaceOptions
from ..restore.options import RestoreOptions
from .optgen import add_options, build, fps_option


def _times(value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        return [float(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of seconds"
                                 ) from None


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder for the pictures (made if missing) and preview.json.")
@click.option("--frames", "count", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Frames to restore, spread evenly over the input. Network cost per face "
                   "track: at most FRAMES x (2 x window + 1) faces in 'window' mode (6 more "
                   "per frame with face-parsing masks), FRAMES x 13 in 'recurrent' mode, "
                   "FRAMES in 'off' mode: within FRAMES x (lookahead + window). Every frame up "
                   "to the last one is still read and tracked, as in the full run.")
@click.option("--at", "at", default=None,
              help="Restore the frames at these times instead (seconds, e.g. 12.5,40).")
@add_options(RestoreOptions)
@add_options(FaceOptions, exclude=("causal",))
@fps_option
@click.option("--overwrite", is_flag=True, help="Replace pictures from an earlier preview.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def preview(input: Path, output: Path, count: int, at: str | None, fps: str | None,
            overwrite: bool, as_json: bool, **values: Any) -> None:
    """Restore a few frames of INPUT as `restore` would (same tracks, look-ahead and temporal
    context) and write each as source, restored and side-by-side PNGs into OUTPUT, with the
    time it took and an estimate for the whole input on this device."""
    from ..restore.preview import preview_video

    summary = preview_video(input, output, build(RestoreOptions, values),
                            faces=build(FaceOptions, values), count=count, at=_times(at),
                            fps=fps, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    for f in summary.frames:
        click.echo(f"frame {f.index} ({f.time:.2f} s, {f.faces} faces): {f.side_by_side}")
    click.echo(f"{len(summary.frames)} frames in {summary.seconds:.1f} s "
               f"({summary.seconds_per_frame:.1f} s a frame; "
               f"{summary.network_seconds:.1f} s in the network for "
               f"{summary.faces_through_network} faces)")
    if summary.estimated_seconds is not None:
        click.echo(f"the whole input ({summary.frame_count} frames): about "
                   f"{_duration(summary.estimated_seconds)} with these options on this device")
    if not summary.exact:
        click.echo("(recurrent mode or parsing masks: the state carried along each track "
                   "starts a few frames before each frame, so the full run can differ slightly)")


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"
