"""A pool of confined GPU workers with per-program timeouts, crash isolation, memory caps and GPU assignment.

Each worker is the sandbox's self-confining service (`spawn_isolated`, sandbox/service.py) serving
export/worker.py: a fresh interpreter with the allow-listed environment (its GPU in CUDA_VISIBLE_DEVICES, no
secrets), which applies Landlock, the privilege drop and rlimits before any program runs (a GPU worker creates
its CUDA context just before confining, the order validated on the H200: export/worker.prepare). Each program is sent as text and written into the worker's fresh scratch directory,
the only place it may write; the run directory stays out of its reach. A program that hangs past its deadline, or a worker over its memory cap, has its
process tree killed; a worker that dies costs only the program it held. After any failed program, and after
any integrity problem (a patched function, a thread or process left behind), the worker is replaced before
it serves another program. In `fresh` mode a worker is replaced after every program (for comparison).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.sandbox import cgroups
from synth_modules.sandbox.cgroups import MemoryCgroup
from synth_modules.sandbox.environment import device_environment
from synth_modules.sandbox.isolation import require_landlock
from synth_modules.sandbox.spawn import IsolatedWorker, WorkerFailure, spawn_isolated

_READY_TIMEOUT_S = 600.0
HANDLER = "synth_modules.export.worker"
DEFAULT_MEMORY_LIMIT_MB = 16384  # host memory per worker (CUDA context + Inductor + Triton compiles)


def worker_environment(gpu: str | None, compile_threads: int) -> dict[str, str]:
    """What a GPU worker adds to the allow-listed environment: its GPU, generated code never from a cache."""
    env = {
        "TORCHINDUCTOR_FX_GRAPH_CACHE": "0",
        "TORCHINDUCTOR_AUTOGRAD_CACHE": "0",
        "TORCHINDUCTOR_COMPILE_THREADS": str(compile_threads),
    }
    env.update(device_environment(gpu))
    return env


@dataclass
class _Worker:
    slot: int
    gpu: str | None
    proc: IsolatedWorker | None = None
    ready: bool = False
    task: dict[str, Any] | None = None
    deadline: float = 0.0
    started_task_at: float = 0.0
    done: int = 0
    leaf: Path | None = None  # its cgroup v2 leaf (memory.max), when the pool has one


@dataclass
class PoolStats:
    started_workers: int = 0
    crashed: int = 0
    timed_out: int = 0
    memory_killed: int = 0
    integrity_restarts: int = 0
    env: dict[str, Any] = field(default_factory=dict)
    isolation: dict[str, Any] = field(default_factory=dict)  # the layers the last worker reported
    memory: str = ""  # how the memory caps are enforced: cgroup-v2 or the pool's RSS watchdog


def _integrity_rejection(reply: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """A program that changed its worker is `unsafe_code`, whatever it computed (its pair is not kept)."""
    outcome = "a pair" if reply.get("ok") else f"{reply.get('category')}: {reply.get('message', '')}"
    return {
        "id": reply.get("id"),
        "ok": False,
        "category": "unsafe_code",
        "message": f"the program changed its worker ({'; '.join(problems)}); it produced {outcome}"[:2000],
        "seconds": reply.get("seconds", 0.0),
        "env": reply.get("env", {}),
        "integrity": problems,
    }


class WorkerPool:
    """Runs export tasks ({"id", "path", "entry_point"}) on `n_workers` GPU workers, yielding results."""

    def __init__(
        self,
        n_workers: int,
        gpus: list[str | None],
        settings: dict[str, Any],
        timeout_s: float,
        log_dir: Path,
        fresh: bool = False,
        compile_threads: int = 1,
        read_roots: list[str] | None = None,
        memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
        total_memory_limit_mb: int | None = None,
        allow_unsandboxed: bool = False,
        cuda_before_confinement: bool = True,
    ):
        if n_workers < 1:
            raise ValueError("n_workers must be >= 1")
        # Refuse before starting anything; 0 means the user accepted running without it, and workers must know.
        allow_unsandboxed = require_landlock(allow_unsandboxed) == 0
        self.settings = settings
        self.timeout_s = timeout_s
        self.fresh = fresh
        self.compile_threads = compile_threads
        self.log_dir = log_dir
        self.read_roots = [str(Path(r).resolve()) for r in read_roots or []]
        self.memory_limit = memory_limit_mb * 1024 * 1024
        # Default: the per-worker caps added up (not MemTotal, which some VMs report low until memory is used).
        total = total_memory_limit_mb or n_workers * memory_limit_mb
        self.total_memory_limit = total * 1024 * 1024
        self.allow_unsandboxed = allow_unsandboxed
        self.cuda_before_confinement = cuda_before_confinement  # export/worker.prepare; see its docstring
        log_dir.mkdir(parents=True, exist_ok=True)
        self._selector = selectors.DefaultSelector()
        self.stats = PoolStats()
        self.cgroup = MemoryCgroup.create(total)
        self.stats.memory = "cgroup-v2" if self.cgroup else "rss-watchdog"
        self._workers = [_Worker(slot=i, gpu=gpus[i % len(gpus)] if gpus else None) for i in range(n_workers)]

    # --- process management -------------------------------------------------------------------------------
    def _start(self, worker: _Worker) -> None:
        settings = {"warmup": not self.fresh, **self.settings}
        gpu = str(settings.get("device", "cuda")).startswith("cuda")
        worker.proc = spawn_isolated(
            HANDLER,
            settings,
            read_roots=self.read_roots,
            gpu=gpu,
            prepare_before_confinement=gpu and self.cuda_before_confinement,
            allow_unsandboxed=self.allow_unsandboxed,
            env=worker_environment(worker.gpu, self.compile_threads),
            log_path=str(self.log_dir / f"worker-{worker.slot}.log"),
            # export-seeds --device serialises timing across workers with a lock file in its own directory
            shared_write_roots=[os.path.dirname(settings["timing_lock"])]
            if settings.get("timing_lock")
            else [],
        )
        worker.ready, worker.task, worker.leaf = False, None, None
        if self.cgroup is not None:
            try:
                leaf = self.cgroup.leaf(
                    f"worker-{worker.slot}-{self.stats.started_workers}", self.memory_limit // 2**20
                )
                cgroups.join(leaf, worker.proc.pid)
                worker.leaf = leaf
            except OSError:
                pass  # the RSS watchdog still applies
        worker.deadline = time.monotonic() + _READY_TIMEOUT_S
        self._selector.register(worker.proc.channel.read_fd, selectors.EVENT_READ, worker)
        self.stats.started_workers += 1

    def _stop(self, worker: _Worker, kill: bool) -> None:
        if worker.proc is None:
            return
        self._selector.unregister(worker.proc.channel.read_fd)
        worker.proc.close(kill=kill)  # kills and reaps the whole tree when it does not exit by itself
        worker.proc, worker.ready = None, False

    def _restart(self, worker: _Worker, kill: bool) -> None:
        self._stop(worker, kill=kill)
        self._start(worker)

    def _failure(self, worker: _Worker, category: str, message: str) -> dict[str, Any]:
        task = worker.task or {}
        worker.task = None
        return {
            "id": task.get("id"),
            "ok": False,
            "category": category,
            "message": message,
            "seconds": time.monotonic() - worker.started_task_at,
        }

    # --- the loop -----------------------------------------------------------------------------------------
    def _send(self, worker: _Worker, task: dict[str, Any]) -> bool:
        worker.task = task
        worker.started_task_at = time.monotonic()
        worker.deadline = worker.started_task_at + self.timeout_s
        # The program travels as text: workers need no access to the run directory (nor the other programs).
        request = {**task, "source": task.get("source") or Path(task["path"]).read_text(encoding="utf-8")}
        try:
            worker.proc.send({"op": "request", "request": request})  # type: ignore[union-attr]
        except WorkerFailure:
            return False
        return True

    def _messages(self, worker: _Worker) -> tuple[list[dict[str, Any]], bool]:
        """Complete protocol messages now readable from `worker`, and whether its channel closed."""
        channel = worker.proc.channel  # type: ignore[union-attr]
        messages = []
        try:
            messages.append(channel.receive(timeout=0))
            while channel.has_pending():
                messages.append(channel.receive(timeout=0))
        except EOFError:
            return messages, True
        except (TimeoutError, ValueError):
            pass
        return messages, False

    def _over_memory(self, active: list[_Worker]) -> Iterator[dict[str, Any]]:
        """Kill workers over their own cap, then the largest while all together are over the total cap."""
        sizes = {w.slot: w.proc.rss_bytes() for w in active if w.proc is not None}
        for worker in active:
            over_total = sum(sizes.values()) > self.total_memory_limit
            size = sizes.get(worker.slot, 0)
            if worker.proc is None or not (
                size > self.memory_limit or (over_total and size == max(sizes.values()))
            ):
                continue
            self.stats.memory_killed += 1
            sizes[worker.slot] = 0
            if worker.task is not None:
                yield self._failure(
                    worker, "memory_limit", f"worker used {size / 2**20:.0f} MiB of host memory"
                )
            self._restart(worker, kill=True)

    def run(self, tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Yield one result per task, in completion order."""
        pending = deque(tasks)
        failed_starts = 0
        for worker in self._workers[: max(1, min(len(self._workers), len(pending)))]:
            self._start(worker)
        active = [w for w in self._workers if w.proc is not None]
        while pending or any(w.task is not None for w in active):
            for worker in active:
                if worker.ready and worker.task is None and pending:
                    task = pending.popleft()
                    if not self._send(worker, task):
                        self.stats.crashed += 1
                        yield self._failure(worker, "crash", "worker exited before taking the task")
                        self._restart(worker, kill=True)
            now = time.monotonic()
            wait = max(0.05, min((w.deadline for w in active if w.proc is not None), default=now + 1) - now)
            for key, _ in self._selector.select(timeout=min(wait, 1.0)):
                worker: _Worker = key.data
                proc = worker.proc
                if proc is None or key.fileobj != proc.channel.read_fd:
                    continue  # replaced earlier in this round
                messages, closed = self._messages(worker)
                for message in messages:
                    op = message.get("op")
                    if op == "ready":
                        worker.ready = True
                        self.stats.env = self.stats.env or message.get("info", {})
                        self.stats.isolation = message.get("isolation", {})
                    elif op == "refused":
                        raise RuntimeError(f"GPU worker refused to start: {message.get('message')}")
                    elif op == "reply" and worker.task is not None:
                        reply = message.get("reply") or {}
                        if reply.get("id") != worker.task.get("id"):
                            continue
                        worker.task, worker.done = None, worker.done + 1
                        reply = {**reply, "env": self.stats.env}
                        if message.get("integrity"):  # patched torch, left a thread or process: rejected
                            self.stats.integrity_restarts += 1
                            reply = _integrity_rejection(reply, message["integrity"])
                        yield reply
                        replace = message.get("integrity") or not reply.get("ok") or self.fresh
                        if replace and pending:  # a worker that failed never serves another program
                            self._restart(worker, kill=False)
                            closed = False
                            break
                if closed and worker.proc is proc:
                    code = proc.proc.wait()
                    if worker.task is not None and worker.leaf and cgroups.oom_kills(worker.leaf):
                        self.stats.memory_killed += 1
                        yield self._failure(worker, "memory_limit", "killed by the kernel at its memory cap")
                    elif worker.task is not None:
                        self.stats.crashed += 1
                        yield self._failure(
                            worker, "crash", f"worker died (exit code {code}) during this program"
                        )
                    elif not worker.ready:
                        failed_starts += 1
                        if failed_starts > 2 * len(active):
                            raise RuntimeError(
                                f"GPU workers keep failing to start; see {self.log_dir}/worker-*.log; "
                                f"the last one's log ends: {proc.log_tail()}"
                            )
                    self._restart(worker, kill=True)
            yield from self._over_memory(active)
            now = time.monotonic()
            for worker in active:
                if worker.proc is None or now < worker.deadline:
                    continue
                if worker.task is not None:
                    self.stats.timed_out += 1
                    yield self._failure(worker, "timeout", f"no result within {self.timeout_s:.0f} s")
                    self._restart(worker, kill=True)
                elif not worker.ready:
                    raise RuntimeError(f"a GPU worker did not start within {_READY_TIMEOUT_S:.0f} s")

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError, KeyError):
                self._stop(worker, kill=False)
        self._selector.close()
        if self.cgroup is not None:
            self.cgroup.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
