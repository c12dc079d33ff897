"""``vidrestore batch``: restore many inputs into one folder, resumably.

``batch`` is a group whose default command is ``run``: ``vidrestore batch SOURCES... --out DIR``
is ``vidrestore batch run SOURCES... --out DIR``; ``vidrestore batch status DIR`` shows a
folder's jobs. (A source literally named ``status`` or ``run`` needs ``./`` in front.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..faces.options import FaceOptions
from ..io.writer import WriterOptions
from ..restore.options import RestoreOptions
from .optgen import add_options, build

# Batch options replace these writer options: --codec picks codec and profile, and the batch
# itself decides when an output may be replaced.
_WRITER_EXCLUDE = ("codec", "prores_profile", "overwrite")


class _DefaultRun(click.Group):
    """A group that runs ``run`` when the first argument is not one of its commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultRun, context_settings={"help_option_names": ["-h", "--help"]})
def batch() -> None:
    """Restore many videos or image sequences into one folder; re-running resumes.

    \b
    Examples:
      vidrestore batch reels/ --out restored/ --codec ffv1
      vidrestore batch @reels.txt --out restored/ --segment-seconds 30
      vidrestore batch scans/reel1/ --fps 24 --codec dpx --out restored/
      vidrestore batch status restored/
    """


def _batch_options(fn: Any) -> Any:
    from ..batch.options import BatchOptions

    return add_options(BatchOptions)(fn)


@batch.command("run")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Output folder (outputs, sidecars, reports, job database).")
@add_options(RestoreOptions)
@add_options(FaceOptions, exclude=("causal",))
@_batch_options
@add_options(WriterOptions, exclude=_WRITER_EXCLUDE)
@click.option("--verify-inputs", is_flag=True,
              help="Hash every input again, even when its size and time are unchanged.")
@click.option("--dry-run", is_flag=True, help="List what would run, and why; change nothing.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="Run jobs on Ray workers: a local Ray instance, or the cluster at ADDRESS "
                   "(write --ray=ADDRESS). Needs pip install 'vidrestore[ray]'.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Ray workers (default: one per GPU, else one per --cpus-per-worker CPUs).")
@click.option("--cpus-per-worker", type=click.FloatRange(0.1), default=1.0, show_default=True,
              help="CPUs reserved by each Ray worker.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def run(ctx: click.Context, sources: tuple[str, ...], out_dir: Path, verify_inputs: bool,
        dry_run: bool, ray_address: str | None, workers: int | None, cpus_per_worker: float,
        as_json: bool, **values: Any) -> None:
    """Restore SOURCES (files, folders, image-sequence folders, @list files) into --out.

    A job database in the output folder records every input (size, time, SHA-256), the options,
    status, attempts, errors and output hashes. Running the same command again skips verified
    finished outputs, resumes unfinished ones at their last finished segment, retries failures
    and redoes inputs that changed. The exit status is 1 if any job failed.
    """
    from ..batch.config import BatchConfig
    from ..batch.decide import describe
    from ..batch.driver import dry_run as plan_only
    from ..batch.driver import run_batch
    from ..batch.options import BatchOptions

    # --codec is the batch's own choice (BatchOptions), not the writer's codec of that name
    writer_values = {k: v for k, v in values.items() if k not in _WRITER_EXCLUDE}
    config = BatchConfig(out_dir, restore=build(RestoreOptions, values),
                         faces=build(FaceOptions, values),
                         writer=build(WriterOptions, writer_values),
                         batch=build(BatchOptions, values), verify_inputs=verify_inputs)
    if dry_run:
        decisions = plan_only(sources, config)
        if as_json:
            click.echo(json.dumps([describe(d) for d in decisions], indent=2))
        for d in [] if as_json else decisions:
            click.echo(f"{d.action:7} {d.source.path} -> {d.output.name}  ({d.reason})")
        return
    say = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    if ray_address is not None:
        from ..batch.ray_runner import run_batch_ray

        result = run_batch_ray(sources, config, address=ray_address, workers=workers,
                               cpus_per_worker=cpus_per_worker, events=say)
    else:
        result = run_batch(sources, config, events=say)
    if as_json:
        click.echo(json.dumps({"ran": result.ran, "jobs": [j.to_dict() for j in result.jobs]},
                              indent=2))
    else:
        done = sum(j.status == "done" for j in result.jobs)
        click.echo(f"{out_dir}: {done} done, {len(result.failed)} failed, "
                   f"{len(result.jobs) - done - len(result.failed)} other")
        for j in result.failed:
            click.echo(f"  failed: {j.source}: {j.error_class}: {j.error_message}")
    if not result.ok:
        ctx.exit(1)


@batch.command("status")
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print every job as JSON.")
def status(out_dir: Path, as_json: bool) -> None:
    """Show the jobs of the batch folder OUT_DIR (status, tries, frames, errors)."""
    from ..batch.driver import status as read_status
    from ..batch.report import status_dict, status_table

    jobs, segments = read_status(out_dir)
    if as_json:
        click.echo(json.dumps(status_dict(jobs, segments), indent=2))
    else:
        click.echo(status_table(jobs, segments))
