"""Validation on a Ray cluster: one actor per sandbox worker, each hosting a warm one-worker SandboxPool.

The driver keeps the pipeline (LLM calls, ordered commits, ledgers), so the run directory and the accepted set
do not depend on where validation ran; only `submit` crosses to the cluster. Actors restart when they die and
the dispatcher resubmits their jobs, so a lost worker or node costs time, not samples.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future
from typing import Any

from synth_modules.executors.ray_actors import RayActorPool
from synth_modules.executors.ray_cluster import connect
from synth_modules.sandbox.api import SandboxOptions, ValidationJob
from synth_modules.types import Verdict

log = logging.getLogger(__name__)

ACTOR_NAME_PREFIX = "synth-sandbox"
JOBS_PER_ACTOR = 2  # one validating, one queued in the actor's pool so its worker never waits on the network


class SandboxActor:
    """Actor body: a warm one-worker SandboxPool on whichever node Ray placed the actor."""

    def __init__(self, options: SandboxOptions):
        from synth_modules.sandbox import SandboxPool

        self._pool = SandboxPool(1, options)

    def ready(self) -> int:
        return os.getpid()

    def worker_pids(self) -> list[int]:
        """The pids of this actor's sandbox workers (tests prove they do not outlive a killed actor)."""
        return self._pool.worker_pids()

    def validate(self, job: ValidationJob) -> Verdict:
        return self._pool.submit(job).result()

    def close(self) -> None:
        self._pool.close()


class RayExecutor:
    """`ValidationExecutor` on Ray: `num_workers` sandbox actors, jobs to the least-loaded live one.

    address: None or "local" starts a private local cluster (shut down on close); "auto", "host:port" or
    "ray://host:10001" joins an existing one (only disconnected on close). An already-connected process
    (ray.init called by the caller) is used as is.
    """

    def __init__(
        self,
        num_workers: int,
        options: SandboxOptions,
        address: str | None = None,
        num_cpus_per_worker: float = 1,
        num_gpus_per_worker: float = 0,
        max_retries: int = 3,
        startup_timeout_s: float = 600.0,
    ):
        self.actor_pids: dict[int, int] = {}
        self._pool: RayActorPool[Verdict] = RayActorPool(
            connect(address, num_cpus=num_workers * num_cpus_per_worker),
            SandboxActor,
            lambda i: (options,),
            count=num_workers,
            method="validate",
            name_prefix=ACTOR_NAME_PREFIX,
            what="sandbox",
            num_cpus=num_cpus_per_worker,
            num_gpus=num_gpus_per_worker,
            per_actor=JOBS_PER_ACTOR,
            max_retries=max_retries,
            on_ready=self._actor_ready,
            close_method="close",  # stop the actors' pools, so their warm workers exit
            startup_timeout_s=startup_timeout_s,
        )
        self.name_prefix = self._pool.name_prefix

    def _actor_ready(self, index: int, pid: Any) -> None:
        previous = self.actor_pids.get(index)
        self.actor_pids[index] = int(pid)
        if previous is not None and previous != pid:
            log.warning("ray sandbox actor %d restarted (pid %s -> %s)", index, previous, pid)

    @property
    def resubmitted(self) -> int:
        """Jobs sent again because their actor was lost."""
        return self._pool.dispatcher.resubmitted

    def submit(self, job: ValidationJob) -> Future[Verdict]:
        return self._pool.submit(job, label=job.id)

    def close(self) -> None:
        """Stop the actors' pools (so their warm workers exit), kill the actors, drop our connection."""
        self._pool.close()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
