"""Scale a batch out on Ray: the same jobs, database and outputs, computed by remote workers.

Each worker is a Ray actor that loads the network and the face detector once and then computes
segments of any job. Segments of one input run one after another, always on the worker that
computed the one before (each needs the previous snapshot); different inputs run in parallel on
different workers. Only this driver writes the job database: workers return records. The
output folder must be visible to every worker (one machine, or a shared file system).

A worker that dies (its process is killed, its node is lost) costs only the segment it was
computing: Ray restarts the actor, which loads the model again, and the driver gives it the same
segment, resuming from the last snapshot. After ``retries + 1`` losses on the same segment the
job is recorded as failed (``WorkerLost``) and the batch goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import UsageError, VidrestoreError
from .config import BatchConfig
from .driver import BatchResult, begin
from .job import Events, JobRun, SourceHasher, finalize
from .jobs import Job, JobDB, SegmentRecord
from .plan import JobSpec, Plan
from .segments import SegmentWorker

log = logging.getLogger(__name__)

RESTART_WAIT_S = 600.0  # how long a lost worker may take to come back (model load included)


class WorkerLost(VidrestoreError):
    """A Ray worker died while computing a job's segment, more often than retries allow."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--ray needs Ray: pip install 'vidrestore[ray]'") from exc
    return ray


class RestoreWorker:
    """Body of the Ray actor: one loaded model, segments and joins on request."""

    def __init__(self, config: BatchConfig, name: str) -> None:
        self.name = f"{name}:{socket.gethostname()}:{os.getpid()}"
        self.worker = SegmentWorker(config.restore, config.faces, name=self.name)

    def ident(self) -> str:
        """``NAME:HOST:PID`` of this worker process (recorded with the segments it computes)."""
        return self.name

    def compute(self, spec: JobSpec, plan: Plan, idx: int,
                prev: SegmentRecord | None) -> SegmentRecord:
        return self.worker.compute(spec, plan, idx, prev)

    def finalize(self, spec: JobSpec, plan: Plan, segments: list[SegmentRecord]) -> Any:
        return finalize(spec, plan, segments)


@dataclass
class _Task:
    actor: Any
    run: JobRun
    kind: Literal["segment", "finalize"]
    idx: int = -1
    prev: SegmentRecord | None = None


def init_ray(address: str | None, *, num_cpus: int | None = None) -> Any:
    """Connect to the cluster at ``address`` (``None``/``"local"``: start one on this machine)."""
    ray = _ray()
    if not ray.is_initialized():
        if address in (None, "", "local"):
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


def default_workers(ray: Any, config: BatchConfig, cpus_per_worker: float) -> int:
    """One worker per GPU when restoring on GPUs, else one per ``cpus_per_worker`` CPUs."""
    res = ray.cluster_resources()
    if config.restore.device != "cpu" and res.get("GPU", 0) >= 1:
        return int(res["GPU"])
    return max(1, int(res.get("CPU", 1) // max(cpus_per_worker, 1e-3)))


def run_batch_ray(sources: Sequence[str | os.PathLike[str]], config: BatchConfig, *,
                  address: str | None = None, workers: int | None = None,
                  cpus_per_worker: float = 1.0, gpus_per_worker: float | None = None,
                  events: Events | None = None) -> BatchResult:
    """Like :func:`~vidrestore.batch.driver.run_batch`, with jobs spread over Ray workers."""
    ray = init_ray(address)
    say = events or (lambda msg: log.info("%s", msg))
    if gpus_per_worker is None:
        has_gpu = ray.cluster_resources().get("GPU", 0) >= 1
        gpus_per_worker = 1.0 if has_gpu and config.restore.device != "cpu" else 0.0
    n = workers or default_workers(ray, config, cpus_per_worker)
    env = {k: v for k, v in os.environ.items() if k.startswith("VIDRESTORE_")}
    actor_cls = ray.remote(RestoreWorker).options(
        num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=-1,
        max_task_retries=0, runtime_env={"env_vars": env} if env else None)
    with begin(sources, config, say) as (db, queue, ids):
        if not queue:
            return BatchResult([db.job(i) for i in ids], 0)
        count = iter(range(1 << 30))

        def new_actor() -> Any:
            return actor_cls.remote(config, f"ray-{next(count)}")

        actors = [new_actor() for _ in range(min(n, len(queue)))]
        say(f"{len(actors)} Ray workers for {len(queue)} jobs")
        driver = _Driver(ray, db, config, say, new_actor)
        try:
            driver.run(queue, actors)
        finally:
            driver.hasher.close()
            for a in {*actors, *driver.names}:
                ray.kill(a)
        return BatchResult([db.job(i) for i in ids], driver.ran)


class _Driver:
    """Hands segments to idle workers and records what comes back (the only DB writer)."""

    def __init__(self, ray: Any, db: JobDB, config: BatchConfig, say: Events,
                 new_actor: Callable[[], Any]) -> None:
        self.ray, self.db, self.config, self.say = ray, db, config, say
        self.new_actor = new_actor
        self.hasher = SourceHasher()
        self.inflight: dict[Any, _Task] = {}
        self.names: dict[Any, str] = {}
        self.losses: dict[tuple[int, int], int] = {}
        self.ran = 0

    def run(self, queue: list[Job], actors: list[Any]) -> None:
        ray = self.ray
        for actor, name in zip(actors, ray.get([a.ident.remote() for a in actors]), strict=True):
            self.names[actor] = name
        idle = list(actors)
        while queue or self.inflight:
            while idle and queue:
                self._start(idle.pop(0), queue.pop(0), queue, idle)
            if not self.inflight:
                continue
            ready, _ = ray.wait(list(self.inflight), num_returns=1)
            task = self.inflight.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayActorError as exc:
                self._lost(task, exc, queue, idle)
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None) or exc
                self._failed(task.run, cause, queue)
                idle.append(task.actor)
                continue
            if task.kind == "segment":
                rec: SegmentRecord = result
                task.run.segment_done(rec)
                self.say(f"job {rec.job_id}: segment {rec.idx} done on {rec.worker} "
                         f"({rec.seconds or 0:.1f} s)")
                self._submit_next(task.actor, task.run)
            else:
                try:
                    done = task.run.finish(result, self.hasher)
                    self.say(f"job {done.id}: done, {done.frames} frames -> {done.output}")
                except Exception as exc:  # recorded against the job
                    self._failed(task.run, exc, queue)
                idle.append(task.actor)

    def _start(self, actor: Any, job: Job, queue: list[Job], idle: list[Any]) -> None:
        job = self.db.job(job.id)
        self.hasher.submit(job)
        run = JobRun(self.db, job, self.config, worker="ray")
        self.ran += 1
        try:
            run.begin()
        except Exception as exc:  # one bad input fails alone
            self._failed(run, exc, queue)
            idle.append(actor)
            return
        self.say(f"job {job.id}: {job.source} -> {job.output}")
        self._submit_next(actor, run)

    def _submit_next(self, actor: Any, run: JobRun) -> None:
        assert run.plan is not None
        if run.complete:
            ref = actor.finalize.remote(run.spec, run.plan, run.segments)
            self.inflight[ref] = _Task(actor, run, "finalize")
            return
        idx, prev = run.next_segment(self.names.get(actor))
        ref = actor.compute.remote(run.spec, run.plan, idx, prev)
        self.inflight[ref] = _Task(actor, run, "segment", idx, prev)

    def _lost(self, task: _Task, exc: BaseException, queue: list[Job], idle: list[Any]) -> None:
        key = (task.run.job.id, task.idx)
        self.losses[key] = self.losses.get(key, 0) + 1
        self.say(f"job {task.run.job.id}: worker lost during "
                 f"{'segment ' + str(task.idx) if task.kind == 'segment' else 'the join'}; "
                 "giving it to the restarted worker")
        actor = self._restarted(task.actor)
        task = dataclasses.replace(task, actor=actor)
        if self.losses[key] > self.config.batch.retries:
            self._failed(task.run, WorkerLost(
                f"{task.run.job.source}: worker lost {self.losses[key]} times "
                f"({type(exc).__name__})"), queue)
            idle.append(task.actor)
            return
        self._submit_next(task.actor, task.run)

    def _restarted(self, actor: Any) -> Any:
        """The worker once Ray has restarted it (a new process that loaded the model again),
        or a new worker in its place if it cannot come back."""
        ray = self.ray
        deadline = time.monotonic() + RESTART_WAIT_S
        while time.monotonic() < deadline:
            try:
                self.names[actor] = ray.get(actor.ident.remote(), timeout=RESTART_WAIT_S)
                return actor
            except ray.exceptions.ActorDiedError:
                break  # gone for good
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                time.sleep(0.5)  # still restarting
        fresh = self.new_actor()
        self.names[fresh] = ray.get(fresh.ident.remote())
        return fresh

    def _failed(self, run: JobRun, exc: BaseException, queue: list[Job]) -> None:
        failed = run.fail(exc)
        self.say(f"job {failed.id}: failed: {failed.error_class}: {failed.error_message}")
        if failed.failures <= self.config.batch.retries:
            self.db.requeue(failed.id)
            queue.append(failed)
