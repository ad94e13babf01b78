"""A pool of GPU worker processes with per-program timeouts, crash isolation and GPU assignment.

Workers are plain subprocesses (`python -m synth_modules.export.worker`) speaking JSON lines, so each gets a
clean environment of its own before torch is imported: its GPU (CUDA_VISIBLE_DEVICES), a fresh Inductor/Triton
cache directory, the FX graph cache off (a cache hit would skip the code generation we capture). A program that
hangs past its deadline has its worker killed; a worker that dies costs only the program it held. In `fresh`
mode a worker is replaced after every program (a fresh interpreter per program, for comparison).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import synth_modules

_READY_TIMEOUT_S = 600.0
_PACKAGE_ROOT = str(Path(synth_modules.__file__).resolve().parents[1])


def worker_environment(gpu: str | None, cache_dir: Path, compile_threads: int) -> dict[str, str]:
    """The environment of one worker: its GPU, private caches, generated code never served from a cache."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    env.update(
        {
            "TORCHINDUCTOR_CACHE_DIR": str(cache_dir / "inductor"),
            "TRITON_CACHE_DIR": str(cache_dir / "triton"),
            "TORCHINDUCTOR_FX_GRAPH_CACHE": "0",
            "TORCHINDUCTOR_AUTOGRAD_CACHE": "0",
            "TORCHINDUCTOR_COMPILE_THREADS": str(compile_threads),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p),
        }
    )
    return env


@dataclass
class _Worker:
    slot: int
    gpu: str | None
    proc: subprocess.Popen | None = None
    buffer: bytes = b""
    ready: bool = False
    task: dict[str, Any] | None = None
    deadline: float = 0.0
    started_task_at: float = 0.0
    done: int = 0
    log: IO[bytes] | None = None
    cache_dir: Path | None = None


@dataclass
class PoolStats:
    started_workers: int = 0
    crashed: int = 0
    timed_out: int = 0
    env: dict[str, Any] = field(default_factory=dict)


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
    ):
        if n_workers < 1:
            raise ValueError("n_workers must be >= 1")
        self.settings = settings
        self.timeout_s = timeout_s
        self.fresh = fresh
        self.compile_threads = compile_threads
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="synth-export-"))
        self._selector = selectors.DefaultSelector()
        self._retired: list[subprocess.Popen] = []
        self.stats = PoolStats()
        self._workers = [_Worker(slot=i, gpu=gpus[i % len(gpus)] if gpus else None) for i in range(n_workers)]

    # --- process management -------------------------------------------------------------------------------
    def _start(self, worker: _Worker) -> None:
        worker.cache_dir = self._tmp / f"worker-{worker.slot}"
        worker.cache_dir.mkdir(parents=True, exist_ok=True)
        settings = {"warmup": not self.fresh, **self.settings, "workdir": str(worker.cache_dir / "pairs")}
        worker.log = (self.log_dir / f"worker-{worker.slot}.log").open("ab")
        worker.proc = subprocess.Popen(
            [sys.executable, "-m", "synth_modules.export.worker", "--settings", json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=worker.log,
            env=worker_environment(worker.gpu, worker.cache_dir, self.compile_threads),
            cwd=_PACKAGE_ROOT,
        )
        worker.buffer, worker.ready, worker.task = b"", False, None
        worker.deadline = time.monotonic() + _READY_TIMEOUT_S
        self._selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)  # type: ignore[arg-type]
        self.stats.started_workers += 1

    def _stop(self, worker: _Worker, kill: bool) -> None:
        proc = worker.proc
        if proc is None:
            return
        self._selector.unregister(proc.stdout)  # type: ignore[arg-type]
        if kill:
            proc.kill()
        else:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
        self._retired.append(proc)
        if worker.log is not None:
            worker.log.close()
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
        try:
            worker.proc.stdin.write((json.dumps(task) + "\n").encode())  # type: ignore[union-attr]
            worker.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            return False
        return True

    def _lines(self, worker: _Worker) -> tuple[list[dict[str, Any]], bool]:
        """Complete protocol messages now readable from `worker`, and whether its stdout closed."""
        data = os.read(worker.proc.stdout.fileno(), 1 << 20)  # type: ignore[union-attr]
        if not data:
            return [], True
        worker.buffer += data
        *complete, worker.buffer = worker.buffer.split(b"\n")
        return [json.loads(line) for line in complete if line.strip()], False

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
                if proc is None or key.fileobj is not proc.stdout:
                    continue  # replaced earlier in this round
                messages, closed = self._lines(worker)
                for message in messages:
                    if message.get("ready"):
                        worker.ready = True
                        self.stats.env = self.stats.env or message.get("env", {})
                    elif worker.task is not None and message.get("id") == worker.task.get("id"):
                        worker.task, worker.done = None, worker.done + 1
                        yield message
                        if self.fresh and pending:
                            self._restart(worker, kill=False)
                            break
                if closed and worker.proc is proc:
                    code = worker.proc.wait()
                    if worker.task is not None:
                        self.stats.crashed += 1
                        yield self._failure(
                            worker, "crash", f"worker died (exit code {code}) during this program"
                        )
                    elif not worker.ready:
                        failed_starts += 1
                        if failed_starts > 2 * len(active):
                            raise RuntimeError(
                                f"GPU workers keep failing to start; see {self.log_dir}/worker-*.log"
                            )
                    self._restart(worker, kill=True)
            self._retired = [p for p in self._retired if p.poll() is None]
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
            self._stop(worker, kill=False)
        for proc in self._retired:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._retired.clear()
        self._selector.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
