"""The evaluator on a Ray cluster: one actor per GPU, each hosting an `Evaluator` pinned to the GPU Ray gave it.

The driver keeps the run (eval-all's rows, the tuner, the database); only `evaluate` crosses to the cluster, so
results and their order do not depend on where they were measured. Connecting, shipping code and least-loaded
dispatch with resubmission of a lost actor's jobs are the project's Ray pieces (synth_modules/executors/); Ray
is imported only when this executor is used.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kernel_search.evaluator import EvalOptions, EvalResult, Evaluator
from kernel_search.tasks import Task, load_task
from synth_modules.executors.ray_actors import RayActorPool
from synth_modules.executors.ray_cluster import connect, import_ray

log = logging.getLogger("kernel_search")

ACTOR_NAME_PREFIX = "kernel-search-eval"


class EvaluatorActor:
    """Actor body: an Evaluator for one slot of this node (the GPU Ray assigned, or one CPU slot)."""

    def __init__(self, device: str, options: EvalOptions, slot_name: str):
        from kernel_search.placement.devices import cpu_slots, pinned_slot

        if device == "cpu":
            slots = cpu_slots([slot_name])
        else:  # Ray set this process's CUDA_VISIBLE_DEVICES to the GPU it granted (num_gpus=1)
            granted = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
            if not granted:
                raise RuntimeError("this Ray actor was granted no GPU")
            slots = [pinned_slot(0, granted)]
        self.slot = slots[0]
        self._evaluator = Evaluator(device, options, slots=slots)

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "lock": self.slot.lock_name, "visible_devices": self.slot.visible_devices}

    def evaluate(self, job: tuple[Task, str, str]) -> dict[str, Any]:
        task, source, name = job
        return self._evaluator.evaluate(task, source, name).to_dict()


class RayEvaluator:
    """`evaluate(task, source, name) -> EvalResult` like `Evaluator`, on `actors` Ray actors (one per GPU).

    address: None / "local" starts a private local cluster (stopped on close); "auto", "host:port" or
    "ray://host:10001" joins one. `per_actor` evaluations run at once in each actor (compiles overlap, timing
    stays serial per GPU). `actors=None` on CUDA: one per GPU of the cluster.
    """

    def __init__(
        self,
        device: str,
        options: EvalOptions,
        actors: int | None,
        address: str | None = None,
        per_actor: int = 1,
        startup_timeout_s: float = 600.0,
    ):
        ray = import_ray()
        self.device = "cuda:0" if device == "cuda" else device
        self.options = options
        on_gpu = device != "cpu"
        self._connection = connect(address, num_cpus=actors or 1)
        if actors is None:
            actors = int(ray.cluster_resources().get("GPU", 0)) if on_gpu else 1
            if actors < 1:
                self._connection.close()
                raise ValueError("the Ray cluster has no GPU; use --device cpu or a cluster with GPUs")
        self.actor_info: dict[int, dict[str, Any]] = {}
        self.slot_count = actors
        self._pool: RayActorPool[dict[str, Any]] = RayActorPool(
            self._connection,
            EvaluatorActor,
            lambda i: (device, options, str(i)),
            count=actors,
            method="evaluate",
            name_prefix=ACTOR_NAME_PREFIX,
            what="evaluator",
            num_cpus=1,
            num_gpus=1 if on_gpu else 0,
            per_actor=per_actor,
            on_ready=self.actor_info.__setitem__,
            startup_timeout_s=startup_timeout_s,
        )

    def evaluate(self, task: Task | str, candidate_source: str, name: str = "candidate") -> EvalResult:
        task = task if isinstance(task, Task) else load_task(task)
        future = self._pool.submit((task, candidate_source, name), label=f"{task.name}/{name}")
        return EvalResult.from_dict(future.result())

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
