"""The ``vidrestore`` command: a thin click layer over the library.

Subcommands are imported only when used, so ``--help``/``--version`` stay fast. Library errors
become one line on stderr and the error's exit code; ``-v`` adds logs, ``-vv`` also tracebacks.
Ctrl-C cleans up, says so on one line, and ends the process by SIGINT (status 130 in a shell);
SIGTERM and SIGHUP (``timeout``, ``docker stop``, a closed terminal, a job scheduler) clean up the
same way and end the process by their own signal.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from importlib import import_module
from typing import Any, NoReturn

import click

from .. import __version__
from ..errors import VidrestoreError
from ..heap import steady_heap
from ..openmp import passive_waits

COMMANDS = {
    "restore": ("vidrestore.cli.restore_cmd", "restore"),
    "track": ("vidrestore.cli.track_cmd", "track"),
    "preview": ("vidrestore.cli.preview_cmd", "preview"),
    "pipe": ("vidrestore.cli.pipe_cmd", "pipe"),
    "batch": ("vidrestore.cli.batch_cmd", "batch"),
    "weights": ("vidrestore.cli.weights_cmd", "weights"),
}


class LazyGroup(click.Group):
    """A group whose subcommands live in their own modules, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        cmd: click.Command = getattr(import_module(module), attr)
        return cmd

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VidrestoreError as exc:
            stops = (ctx.obj or {}).get("stops")
            if (ctx.obj or {}).get("verbose", 0) >= 2 or (stops is not None
                                                          and stops.signum is not None):
                raise  # with a stop behind it, main() ends the process by the signal
            click.echo(f"vidrestore: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo(f"vidrestore: {_said(signal.SIGINT)}", err=True)
            raise _Interrupted from None
        except _Stopped as stop:
            click.echo(f"vidrestore: {_said(stop.signum)}", err=True)
            raise


def _said(signum: int) -> str:
    return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


class _Interrupted(Exception):
    """Ctrl-C reached the top after every ``with`` block cleaned up."""


class _Stopped(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread so that every ``with`` block cleans up
    (a BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _StopSignals:
    """The handler of SIGINT, SIGTERM and SIGHUP: raises the stop in the main thread and
    remembers it, since a library may turn the exception into another on its way up
    (onnxruntime's extension, imported at that moment, reports any error as an ImportError):
    the process still ends by the signal it was sent."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: object) -> NoReturn:
        self.signum = signum
        raise KeyboardInterrupt if signum == signal.SIGINT else _Stopped(signum)

    def install(self) -> None:
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
            signal.signal(signal.SIGINT, self)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="vidrestore")
@click.option("-v", "--verbose", count=True, help="More logs (-v info, -vv debug and tracebacks).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Restore faces in video with CodeFormer: temporally stable, with sound, timing and format
    kept.

    \b
    Examples:
      vidrestore restore in.mp4 -o out.mp4
      vidrestore track in.mp4 -o preview.mp4 --report tracks.json
      vidrestore weights list
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main() -> None:
    """Console-script entry point."""
    steady_heap()
    passive_waits()
    stops = _StopSignals()
    stops.install()
    try:
        code = cli.main(prog_name="vidrestore", standalone_mode=False, obj={"stops": stops})
    except click.ClickException as exc:  # a bad option or argument: one line, like the rest
        click.echo(f"vidrestore: error: {exc.format_message()}{_help_hint(exc)}", err=True)
        sys.exit(exc.exit_code)
    except (_Interrupted, KeyboardInterrupt, click.Abort):
        _die_by(signal.SIGINT)
    except _Stopped as stop:
        _die_by(stop.signum)
    except BaseException:
        if stops.signum is None:
            raise
        # the stop, turned into another exception by the code it landed in
        click.echo(f"vidrestore: {_said(stops.signum)}", err=True)
        _die_by(stops.signum)
    sys.exit(code if isinstance(code, int) else 0)


def _help_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


def _die_by(signum: int) -> NoReturn:
    """End the process by ``signum``, so a calling shell or script sees an interruption, not a
    failure.

    A plain ``sys.exit(128 + n)`` is not reliable: CPython also marks the process as killed by
    SIGINT when the interrupt landed inside an ``exec`` (dataclass creation, say), whatever the
    exit code.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    sys.exit(128 + signum)
