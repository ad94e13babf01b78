"""The parent side of the sandbox: a pool of warm worker processes behind a Future-returning API.

    with SandboxPool(num_workers=2, options=SandboxOptions(timeout_s=60)) as pool:
        futures = [pool.submit(ValidationJob(id=..., source=..., entry_point=...)) for ...]
        verdicts = [f.result() for f in futures]

`submit` runs the static checks in the calling thread and completes at once on a static rejection; otherwise
the job queues for the next free worker. One thread per worker slot talks to its process; a worker that dies
(a program that killed its parent) costs that one job a `crash` verdict and is replaced at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import tempfile
import threading
import time
from concurrent.futures import Future
from typing import Any

from synth_modules.sandbox import cgroups
from synth_modules.sandbox.api import SandboxOptions, ValidationJob
from synth_modules.sandbox.cgroups import MemoryCgroup
from synth_modules.sandbox.isolation import require_landlock
from synth_modules.sandbox.protocol import options_to_dict
from synth_modules.sandbox.spawn import IsolatedWorker, WorkerFailure
from synth_modules.sandbox.static_checks import check_static
from synth_modules.types import Category, Stage, Verdict

STARTUP_TIMEOUT_S = 900.0  # torch import + Inductor warm-up on a busy 2-core box
REPLY_GRACE_S = 60.0  # the worker enforces the job timeout itself; this only catches a hung worker
WORKER_OVERHEAD_MB = 3072  # a warm worker's own memory (torch, Inductor), on top of one child's cap


def shared_tmp_dir() -> str:
    """The workers' TMPDIR, shared by every pool of this user and kept between runs.

    Inductor puts its precompiled torch headers (a long g++ run, ~150 MB) beneath TMPDIR, keyed by a hash of
    the preprocessed headers, compiler and flags, so sharing it lets a new worker skip that compile. Only
    workers (trusted code) write here; sandboxed children may read it and write nowhere but their own job
    directory (Landlock), so no program can plant a header that a later program compiles against.
    """
    path = os.path.join(tempfile.gettempdir(), f"synth-torch-sandbox-{os.geteuid()}")
    os.makedirs(path, mode=0o755, exist_ok=True)
    if os.stat(path).st_uid != os.geteuid():
        raise RuntimeError(f"{path} belongs to another user; refusing to share compiled headers with it")
    os.chmod(path, 0o755)
    return path


def worker_env(base_dir: str, device: str = "cpu") -> dict[str, str]:
    """What a fork-server worker adds to the allow-listed environment: one thread, caches under `base_dir`.

    For CPU validation the GPUs are hidden: Dynamo would otherwise initialise CUDA in the warm worker, and a
    CUDA context does not survive the fork of each child.
    """
    env = {
        "TMPDIR": shared_tmp_dir(),
        "TORCHINDUCTOR_CACHE_DIR": os.path.join(base_dir, "warm"),
        "TORCHINDUCTOR_COMPILE_THREADS": "1",
        "TORCHINDUCTOR_FX_GRAPH_CACHE": "0",
        "TORCHINDUCTOR_AUTOGRAD_CACHE": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", HIP_VISIBLE_DEVICES="")
    return env


class WorkerProcess(IsolatedWorker):
    """One `python -m synth_modules.sandbox.worker` fork server (spawn.IsolatedWorker) and its directory."""

    def __init__(self, options: SandboxOptions, warm: bool, memory: MemoryCgroup | None = None):
        base_dir = tempfile.mkdtemp(prefix="synth-sandbox-")
        for sub in ("warm", "jobs"):
            os.makedirs(os.path.join(base_dir, sub), mode=0o755)
        args = ["--base-dir", base_dir] + ([] if warm else ["--no-warm"])
        super().__init__(
            "synth_modules.sandbox.worker",
            args,
            env=worker_env(base_dir, options.device),
            base_dir=base_dir,
            cwd=base_dir,
        )
        job_leaf = None
        if memory is not None:  # the worker in one leaf, its children (one at a time) in another
            name = os.path.basename(base_dir)
            try:
                cgroups.join(
                    memory.leaf(f"{name}-worker", options.memory_limit_mb + WORKER_OVERHEAD_MB), self.pid
                )
                job_leaf = str(memory.leaf(f"{name}-job", options.memory_limit_mb))
            except OSError:
                job_leaf = None
        self.send({"op": "config", "options": options_to_dict(options), "cgroup": job_leaf})

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> dict[str, Any]:
        return super().wait_ready(timeout)

    def run(self, job: ValidationJob, options: SandboxOptions) -> dict[str, Any]:
        """Send one job and wait for its result message."""
        timeout = float(job.extra.get("timeout_s", options.timeout_s))
        self.send({"op": "job", "job": dataclasses.asdict(job), "options": options_to_dict(options)})
        message = self.receive(timeout + REPLY_GRACE_S)
        if message.get("op") != "result":
            raise WorkerFailure(f"unexpected worker message {message.get('op')!r}")
        return message


def _crash(message: str, stage: Stage = Stage.SANDBOX) -> Verdict:
    return Verdict.reject(stage, Category.CRASH, message)


class SandboxPool:
    """Validate programs in isolated, warm worker processes. Thread-safe; use as a context manager."""

    def __init__(self, num_workers: int = 2, options: SandboxOptions | None = None):
        if num_workers < 1:
            raise ValueError("num_workers must be >= 1")
        self.options = options or SandboxOptions()
        self.landlock_abi = require_landlock(self.options.allow_unsandboxed)  # refuse before any work
        if self.landlock_abi == 0:  # the user accepted it (flag or environment): the children must know
            self.options = dataclasses.replace(self.options, allow_unsandboxed=True)
        # All workers and their children together: cgroup v2 where possible (memory_mechanism says).
        # (Not sized from MemTotal: on some VMs it reads a fraction of the real limit until memory is used.)
        total_mb = num_workers * (self.options.memory_limit_mb + WORKER_OVERHEAD_MB)
        self.memory = MemoryCgroup.create(total_mb)
        self.memory_mechanism = "cgroup-v2" if self.memory else "rlimit-as per child"
        self.num_workers = num_workers
        self.restarts = 0  # workers replaced after dying mid-job
        self.isolation: dict[str, Any] = {}  # layers the last sandboxed child reported
        self._queue: queue.Queue[tuple[ValidationJob, Future[Verdict], float] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: dict[int, WorkerProcess] = {}
        self._closed = False
        self._ready = [threading.Event() for _ in range(num_workers)]
        self._threads = [
            threading.Thread(target=self._serve, args=(slot,), name=f"sandbox-{slot}", daemon=True)
            for slot in range(num_workers)
        ]
        for thread in self._threads:
            thread.start()

    # --- public API --------------------------------------------------------------------------------------
    def submit(self, job: ValidationJob) -> Future[Verdict]:
        """Validate `job`; the Future resolves to its Verdict (static rejections resolve immediately)."""
        if self._closed:
            raise RuntimeError("SandboxPool is closed")
        future: Future[Verdict] = Future()
        start = time.perf_counter()
        if self.options.static_checks:
            verdict = check_static(job.source, job.entry_point, self.options.static_policy)
            static_s = time.perf_counter() - start
            if not verdict.ok:
                verdict.seconds = round(static_s, 4)
                verdict.timings["static"] = round(static_s, 4)
                future.set_result(verdict)
                return future
        else:
            static_s = 0.0
        self._queue.put((job, future, static_s))
        return future

    def probe(self, job: ValidationJob) -> Future[Verdict]:
        """Run `job` in the same isolated child, but only load, construct, make inputs and call forward once.

        No torch.compile and no output checks, so it is cheap. On failure the Verdict's stage/category say
        where it failed and `checks["exception_type"]` / `checks["exception_message"]` carry the exception;
        on success `output_shapes` holds the forward's output shapes.
        """
        return self.submit(dataclasses.replace(job, extra={**job.extra, "mode": "probe"}))

    def call(self, task: str, job: ValidationJob) -> Future[Verdict]:
        """Run the registered task `task` (tasks.py) on `job` in a confined child, without static checks.

        The Verdict is ok with the task's JSON answer in `checks["result"]`, or says why there is none
        (`timeout`, `memory_limit`, `crash`, ...). Untrusted: check the answer's types before using it.
        """
        if self._closed:
            raise RuntimeError("SandboxPool is closed")
        future: Future[Verdict] = Future()
        self._queue.put((dataclasses.replace(job, extra={**job.extra, "task": task}), future, 0.0))
        return future

    def validate_all(self, jobs: list[ValidationJob]) -> list[Verdict]:
        """Submit every job and wait for all verdicts, in order."""
        futures = [self.submit(job) for job in jobs]
        return [f.result() for f in futures]

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until every worker finished its warm-up (or failed to start); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in self._ready:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not event.wait(remaining):
                return False
        return True

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._workers.values() if w.alive()]

    def close(self) -> None:
        """Finish queued jobs, stop the workers, remove their directories."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if self.memory is not None:
            self.memory.close()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- worker slots ------------------------------------------------------------------------------------
    def _start(self, slot: int, warm: bool) -> WorkerProcess:
        worker = WorkerProcess(self.options, warm=warm, memory=self.memory)
        with self._lock:
            self._workers[slot] = worker
        return worker

    def _forget(self, slot: int, worker: WorkerProcess, kill: bool) -> None:
        worker.close(kill=kill)
        with self._lock:
            if self._workers.get(slot) is worker:
                del self._workers[slot]

    def _serve(self, slot: int) -> None:
        worker = self._start(slot, warm=True) if self.options.warm else None
        if worker is not None:
            with contextlib.suppress(WorkerFailure):  # a start failure is reported on the first job
                worker.wait_ready()
        self._ready[slot].set()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                job, future, static_s = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if self.options.warm:
                        worker, verdict = self._run_warm(slot, worker, job)
                    else:
                        verdict = self._run_fresh(slot, job)
                except Exception as exc:  # never leave a Future unresolved
                    verdict = _crash(f"sandbox pool error: {type(exc).__name__}: {exc}")
                verdict.seconds = round(verdict.seconds + static_s, 4)
                if static_s:
                    verdict.timings["static"] = round(static_s, 4)
                future.set_result(verdict)
        finally:
            if worker is not None:
                self._forget(slot, worker, kill=False)

    def _record(self, message: dict[str, Any]) -> Verdict:
        if message.get("isolation"):
            self.isolation = message["isolation"]
        return Verdict.from_dict(message["verdict"])

    def _run_warm(
        self, slot: int, worker: WorkerProcess | None, job: ValidationJob
    ) -> tuple[WorkerProcess | None, Verdict]:
        if worker is None or not worker.alive():
            if worker is not None:
                self._forget(slot, worker, kill=True)
            worker = self._start(slot, warm=True)
        try:
            worker.wait_ready()
        except WorkerFailure as exc:
            tail = worker.log_tail()
            self._forget(slot, worker, kill=True)
            return None, _crash(f"sandbox worker failed to start: {exc}; log tail: {tail}")
        start = time.perf_counter()
        try:
            verdict = self._record(worker.run(job, self.options))
        except WorkerFailure as exc:
            seconds = time.perf_counter() - start
            self._forget(slot, worker, kill=True)
            self.restarts += 1
            replacement = self._start(slot, warm=True)  # warm up again while the caller moves on
            verdict = _crash(f"{exc} while validating this program (did it kill its parent?)")
            verdict.seconds = round(seconds, 4)
            return replacement, verdict
        verdict.seconds = round(time.perf_counter() - start, 4)
        return worker, verdict

    def _run_fresh(self, slot: int, job: ValidationJob) -> Verdict:
        """Fresh-interpreter mode: a new worker process for this one job (it pays import + first compile)."""
        start = time.perf_counter()
        worker = self._start(slot, warm=False)
        try:
            worker.wait_ready()
            verdict = self._record(worker.run(job, self.options))
        except WorkerFailure as exc:
            verdict = _crash(f"{exc}; log tail: {worker.log_tail()}")
        finally:
            self._forget(slot, worker, kill=False)
        verdict.seconds = round(time.perf_counter() - start, 4)
        return verdict
