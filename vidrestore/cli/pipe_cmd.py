"""``vidrestore pipe``: a raw-frame filter (stdin to stdout) for ffmpeg, vspipe and editors."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import IO, Any

import click

from ..faces.options import FaceOptions
from ..hosts.rawpipe import PIX_FMTS
from ..restore.options import RestoreOptions
from .optgen import add_options, build

log = logging.getLogger(__name__)

EXIT_BROKEN_PIPE = 141  # what shells report for a filter stopped by SIGPIPE


def _frames_stdout() -> IO[bytes]:
    """A private handle on stdout for frames; fd 1 itself is pointed at stderr.

    Anything else that writes to stdout afterwards (a library's print, a C library's message)
    then lands on stderr and cannot corrupt the frame stream.
    """
    sys.stdout.flush()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return out


def _stream_defaults(cmd: click.Command) -> click.Command:
    """The temporal mode's default depends on --lookahead here (see stream_options)."""
    for param in cmd.params:
        if param.name == "temporal" and isinstance(param, click.Option):
            param.default = None
            param.show_default = False
            param.help = (param.help or "") + (
                "  [default: recurrent; window with --lookahead]")
    return cmd


@_stream_defaults
@click.command()
@click.option("--size", required=True,
              help="Frame size WIDTHxHEIGHT of the raw input; the output is the same size, or "
                   "--upscale times it.")
@click.option("--pix-fmt", type=click.Choice(list(PIX_FMTS)), default="rgb24", show_default=True,
              help="Raw pixel format of input and output (rgb48le: 16 bits a channel).")
@click.option("--rate", default="25", show_default=True,
              help="Frame rate (25, 30000/1001, 29.97); only sets the frames' timestamps.")
@click.option("--lookahead", type=click.IntRange(0, 120), default=0, show_default=True,
              help="Frames each frame waits for, so landmarks are smoothed (and gaps bridged) with "
                   "what follows; 0 = causal, no frame waits for later ones. With a look-ahead "
                   "the default temporal mode is 'window' (window capped at the look-ahead): "
                   "output then lags input by the look-ahead plus the window.")
@add_options(RestoreOptions)
@add_options(FaceOptions, exclude=("causal", "lookahead"))
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress line on stderr (only when stderr is a terminal).")
@click.pass_context
def pipe(ctx: click.Context, size: str, pix_fmt: str, rate: str, lookahead: int,
         progress: bool, **values: Any) -> None:
    """Restore raw frames from stdin to stdout, streaming, in the same format and size (the
    size times --upscale with --upscale 2, 3 or 4: tell the next program the new size).

    stdout carries frames only; progress and messages go to stderr. Without --lookahead the
    filter is causal: temporal mode 'recurrent' and a face tracker that never waits for later
    frames, so each frame leaves after one network batch. Every input frame comes out exactly
    once, in order. A stream that ends inside a frame is an error (after the whole frames are
    written). A closed stdout ends the filter quietly (exit status 141).

    \b
    Example (sound and timing come from the original file):
      ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - \\
        | vidrestore pipe --size 1920x1080 \\
        | ffmpeg -f rawvideo -pix_fmt rgb24 -s 1920x1080 -r 25 -i - \\
                 -i in.mp4 -map 0:v -map 1:a -c:a copy out.mp4
    """
    from ..hosts.rawpipe import RawFormat, run_pipe, stream_latency, stream_options

    fmt = RawFormat.parse(size, pix_fmt, rate)
    from ..upscale.geometry import check_output_size

    check_output_size(fmt.width, fmt.height, int(values.get("upscale") or 1))
    temporal_given = values.get("temporal") is not None
    if not temporal_given:
        values.pop("temporal", None)
    options, faces = stream_options(build(RestoreOptions, values), build(FaceOptions, values),
                                    lookahead, temporal_given=temporal_given)
    frames_out = _frames_stdout()
    from ..restore.pipeline import Restorer

    restorer = Restorer(options, faces)
    log.info("pipe: %s at %s fps (out: %s), temporal %s, output lags input by up to %d frames "
             "plus one network batch", fmt.describe(), fmt.rate,
             fmt.scaled(options.upscale).describe(), options.temporal, stream_latency(restorer))
    show = progress and sys.stderr.isatty()
    from tqdm import tqdm

    try:
        with tqdm(unit="frame", desc="pipe", disable=not show, file=sys.stderr) as bar:
            summary = run_pipe(sys.stdin.buffer, frames_out, fmt, restorer,
                               progress_callback=lambda n: bar.update(n - bar.n))
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            frames_out.close()
        ctx.exit(EXIT_BROKEN_PIPE)
    frames_out.close()
    restorer.close()
    log.info("pipe: %d frames, %d faces restored, %.2f fps", summary.frames,
             sum(summary.faces_restored.values()), summary.fps)
