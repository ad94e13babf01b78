"""The Ray executor on a real local Ray cluster (2 CPUs): jobs survive killed actors, and the pipeline writes the
same accepted set with executor=ray as with the local pool, also across a resume and an actor killed mid-run."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from synth_modules.executors.ray_dispatch import ActorDispatcher  # noqa: E402

SAMPLES = 8
SEED = 5


class EchoActor:
    """A stand-in worker: answers after `delay` seconds with its pid, so a test can kill it mid-job."""

    def ready(self) -> int:
        return os.getpid()

    def work(self, item: tuple[int, float]) -> tuple[int, int]:
        value, delay = item
        time.sleep(delay)
        return value, os.getpid()


@pytest.fixture(scope="module")
def ray_cluster():
    """One real local cluster (2 CPUs) for the module; executors join it and must leave it running."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def _echo_actors(count: int) -> list:
    remote = ray.remote(EchoActor).options(num_cpus=0.5, max_restarts=-1, max_task_retries=0, max_concurrency=4)
    return [remote.remote() for _ in range(count)]


def _pid_of(actor) -> int:
    return ray.get(actor.ready.remote(), timeout=60)


def test_dispatch_survives_an_actor_killed_mid_job(ray_cluster):
    actors = _echo_actors(2)
    dispatcher: ActorDispatcher[tuple[int, int]] = ActorDispatcher(actors, "work", per_actor=2)
    assert dispatcher.wait_ready(2, 60) == 2
    victim = _pid_of(actors[0])
    futures = [dispatcher.submit((i, 1.0), label=f"job{i}") for i in range(8)]
    time.sleep(0.4)  # both actors are now inside their first jobs
    os.kill(victim, signal.SIGKILL)
    results = [f.result(timeout=120) for f in futures]
    assert [value for value, _ in results] == list(range(8))
    assert dispatcher.resubmitted >= 1  # the kill really hit running work
    assert dispatcher.actor_losses >= 1
    assert victim not in {pid for _, pid in results}  # every job the victim held ran again elsewhere
    # The killed actor was restarted by Ray and takes work again.
    assert dispatcher.wait_ready(2, 60) == 2
    assert dispatcher.submit((99, 0.0)).result(timeout=60)[0] == 99
    dispatcher.close()
    for actor in actors:
        ray.kill(actor, no_restart=True)


def test_dispatch_moves_work_off_an_actor_gone_for_good(ray_cluster):
    actors = _echo_actors(2)
    dispatcher: ActorDispatcher[tuple[int, int]] = ActorDispatcher(actors, "work", per_actor=1)
    assert dispatcher.wait_ready(2, 60) == 2
    survivor = _pid_of(actors[1])
    futures = [dispatcher.submit((i, 0.5)) for i in range(6)]
    time.sleep(0.2)
    ray.kill(actors[0], no_restart=True)
    results = [f.result(timeout=120) for f in futures]
    assert [value for value, _ in results] == list(range(6))
    assert dispatcher.resubmitted >= 1
    assert {pid for _, pid in results[2:]} == {survivor}
    assert dispatcher.alive_count() == 1
    ray.kill(actors[1], no_restart=True)
    # With no actor left, queued work fails loudly instead of hanging.
    lost = dispatcher.submit((7, 0.0))
    with pytest.raises(RuntimeError):
        lost.result(timeout=60)
    dispatcher.close()
