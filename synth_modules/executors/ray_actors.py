"""A set of named Ray actors of one class behind one dispatcher: started, waited for, and ended together.

Both Ray front ends (validation's RayExecutor, kernel_search's RayEvaluator) need the same life cycle: start
`count` actors with restart-on-death, a dispatcher that sends each call to the least-loaded live one and
resubmits on actor loss (ray_dispatch.py), a clear error when none comes up, and a close that stops the
dispatcher, lets each actor clean up, kills them and drops the cluster connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from synth_modules.executors.ray_cluster import import_ray
from synth_modules.executors.ray_dispatch import ActorDispatcher

T = TypeVar("T")
CLOSE_TIMEOUT_S = 15.0  # how long close() waits for the actors' own clean-up


class RayActorPool(Generic[T]):
    """`count` actors of `actor_class`, built with `make_args(index)`, serving `method` through one dispatcher.

    `connection` (ray_cluster.connect) is owned from here on: close() closes it. `close_method`, when the
    actor has one, is called on every actor (bounded by CLOSE_TIMEOUT_S) before they are killed, so their own
    worker processes exit. `what` names the actors in the error raised when none starts.
    """

    def __init__(
        self,
        connection: Any,
        actor_class: type,
        make_args: Callable[[int], tuple[Any, ...]],
        *,
        count: int,
        method: str,
        name_prefix: str,
        what: str,
        num_cpus: float = 1,
        num_gpus: float = 0,
        per_actor: int = 1,
        max_retries: int = 3,
        on_ready: Callable[[int, Any], None] | None = None,
        close_method: str | None = None,
        startup_timeout_s: float = 600.0,
    ):
        ray = import_ray()
        self._connection = connection
        self._close_method = close_method
        self._closed = False
        self.name_prefix = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
        remote = ray.remote(actor_class)
        self.actors = [
            remote.options(
                name=f"{self.name_prefix}-{i}",
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                max_restarts=-1,
                max_task_retries=0,  # the dispatcher resubmits, to any live actor, not only this one
                max_concurrency=per_actor + 2,  # room for ready() probes and close() beside the jobs
                runtime_env=connection.actor_env,
            ).remote(*make_args(i))
            for i in range(count)
        ]
        self.dispatcher: ActorDispatcher[T] = ActorDispatcher(
            self.actors, method, per_actor=per_actor, max_retries=max_retries, on_ready=on_ready
        )
        if self.dispatcher.wait_ready(1, startup_timeout_s) == 0:
            reason = self.dispatcher.last_error
            resources = ray.cluster_resources()
            self.close()
            raise RuntimeError(
                f"no Ray {what} actor started within {startup_timeout_s:.0f} s (each asks for {num_cpus} CPU, "
                f"{num_gpus} GPU; the cluster has {resources})" + (f": {reason}" if reason else "")
            )

    def submit(self, payload: Any, label: str = "") -> Future[T]:
        return self.dispatcher.submit(payload, label=label)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ray = import_ray()
        self.dispatcher.close()
        try:
            if self._close_method is not None:
                refs = [getattr(actor, self._close_method).remote() for actor in self.actors]
                ray.wait(refs, num_returns=len(refs), timeout=CLOSE_TIMEOUT_S)
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
        finally:
            self._connection.close()
