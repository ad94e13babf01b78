"""The Ray executor on a real local Ray cluster (2 CPUs): jobs survive killed actors, and the pipeline writes the
same accepted set with executor=ray as with the local pool, also across a resume and an actor killed mid-run."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from run_ledgers import decisions

ray = pytest.importorskip("ray")

from synth_modules.executors.ray_cluster import start_local_cluster  # noqa: E402
from synth_modules.executors.ray_dispatch import ActorDispatcher  # noqa: E402
from synth_modules.sampling import sample_id  # noqa: E402

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
    start_local_cluster(num_cpus=2)
    yield ray
    ray.shutdown()


def _echo_actors(count: int) -> list:
    remote = ray.remote(EchoActor).options(
        num_cpus=0.5, max_restarts=-1, max_task_retries=0, max_concurrency=4
    )
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


# ----- the pipeline on Ray ---------------------------------------------------------------------------------------
def _config(out: Path, samples: int, executor: str):
    from synth_modules.config import build_config

    return build_config(
        None,
        {
            "num_total_samples": samples,
            "num_worker": 2,
            "seed": SEED,
            "output_dir": str(out),
            "progress": False,
            "executor": executor,
            # Small programs, and a timeout no loaded CI box reaches: verdicts must not depend on speed.
            "num_core_ops_range": [1, 1],
            "num_compound_ops_range": [0, 0],
            "num_supporting_ops_range": [1, 2],
            "timeout_s": 600,
        },
    )


def _programs(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.glob("SynthModel_*.py"))}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    from synth_modules.run.pipeline import run_generation

    out = tmp_path_factory.mktemp("local") / "programs"
    run_generation(_config(out, SAMPLES, "local"))
    return out


class _ActorKiller(threading.Thread):
    """SIGKILL one sandbox actor's process (as the OOM killer would) a moment after it starts taking jobs.

    The actor's first jobs wait on its worker's Inductor warm-up (seconds), so they are in flight when it dies.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.killed_pid: int | None = None
        self.orphans: list[int] = []  # the killed actor's sandbox workers
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            found = [
                a
                for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("synth-sandbox-")
            ]
            if found:
                target = min(found, key=lambda a: a["name"])
                actor = ray.get_actor(target["name"], namespace=target["namespace"])
                while not self.orphans:  # the pool registers its worker from a thread, just after start
                    self.orphans = ray.get(actor.worker_pids.remote(), timeout=300)
                    time.sleep(0.1)
                time.sleep(2.0)
                self.killed_pid = ray.get(actor.ready.remote(), timeout=60)
                os.kill(self.killed_pid, signal.SIGKILL)
                return
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~2-3 min on a quiet 2-core box; far longer when other work saturates its CPUs
def test_ray_run_matches_local_across_a_resume_and_a_killed_actor(ray_cluster, local_run, tmp_path, caplog):
    import psutil

    from synth_modules.run.pipeline import run_generation

    out = tmp_path / "programs"
    first = run_generation(_config(out, SAMPLES // 2, "ray"))  # a first driver: the first half
    assert first.samples == SAMPLES // 2
    assert ray.is_initialized()  # the executor joined our cluster and left it running

    killer = _ActorKiller()
    killer.start()
    with caplog.at_level(logging.WARNING, logger="synth_modules.executors"):
        second = run_generation(_config(out, SAMPLES, "ray"))  # a restarted driver: resumes from the ledgers
    killer.stop.set()
    killer.join()

    assert second.skipped == SAMPLES // 2
    assert killer.killed_pid is not None, "the run ended before an actor could be killed"
    assert "resubmitting" in caplog.text  # the kill hit jobs in flight, and they ran again elsewhere
    # The killed actor's warm workers noticed their parent was gone and exited.
    deadline = time.time() + 30
    while time.time() < deadline and any(psutil.pid_exists(p) for p in killer.orphans):
        time.sleep(0.5)
    assert killer.orphans and not any(psutil.pid_exists(p) for p in killer.orphans)

    accepted, rejected = decisions(out)
    assert len(accepted) == len(set(accepted)), "an accepted program was written twice"
    assert len(rejected) == len(set(rejected))
    expected_ids = {sample_id(SEED, i) for i in range(SAMPLES)}
    assert set(accepted) | set(rejected) == expected_ids and not set(accepted) & set(rejected)
    local_accepted, local_rejected = decisions(local_run)
    assert accepted == local_accepted  # same ids, same (index) order
    assert rejected == local_rejected
    assert _programs(out) == _programs(local_run)  # byte-identical program files
    assert len(accepted) >= SAMPLES // 2
