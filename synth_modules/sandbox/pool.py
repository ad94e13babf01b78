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
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from typing import Any

from synth_modules.sandbox import limits
from synth_modules.sandbox.api import SandboxOptions, ValidationJob
from synth_modules.sandbox.protocol import Channel, ChannelClosed, ChannelTimeout, options_to_dict
from synth_modules.sandbox.static_checks import check_static
from synth_modules.types import Category, Stage, Verdict

STARTUP_TIMEOUT_S = 900.0  # torch import + Inductor warm-up on a busy 2-core box
REPLY_GRACE_S = 60.0  # the worker enforces the job timeout itself; this only catches a hung worker
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_LOG_TAIL = 600


class WorkerFailure(RuntimeError):
    """The worker process died or stopped answering."""


def shared_tmp_dir() -> str:
    """The workers' TMPDIR, shared by every pool of this user and kept between runs.

    Inductor puts its precompiled torch headers (a long g++ run, ~150 MB) beneath TMPDIR, keyed by a hash of
    the preprocessed headers, compiler and flags, so sharing it lets a new worker skip that compile. Only
    workers write here; sandboxed children may read it and write nowhere but their own job directory.
    """
    path = os.path.join(tempfile.gettempdir(), f"synth-torch-sandbox-{os.geteuid()}")
    os.makedirs(path, mode=0o755, exist_ok=True)
    if os.stat(path).st_uid != os.geteuid():
        raise RuntimeError(f"{path} belongs to another user; refusing to share compiled headers with it")
    os.chmod(path, 0o755)
    return path


def worker_env(base_dir: str, device: str = "cpu") -> dict[str, str]:
    """The worker's environment: the parent's minus secrets, single-threaded, caches under `base_dir`.

    For CPU validation the GPUs are hidden: Dynamo would otherwise initialise CUDA in the warm worker, and a
    CUDA context does not survive the fork of each child.
    """
    env = limits.scrubbed_env()
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", HIP_VISIBLE_DEVICES="")
    python_path = [_PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        PYTHONPATH=os.pathsep.join(python_path),
        TMPDIR=shared_tmp_dir(),
        TORCHINDUCTOR_CACHE_DIR=os.path.join(base_dir, "warm"),
        TORCHINDUCTOR_COMPILE_THREADS="1",
        TORCHINDUCTOR_FX_GRAPH_CACHE="0",
        TORCHINDUCTOR_AUTOGRAD_CACHE="0",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class WorkerProcess:
    """One `python -m synth_modules.sandbox.worker` process and its private base directory."""

    def __init__(self, options: SandboxOptions, warm: bool):
        self.base_dir = tempfile.mkdtemp(prefix="synth-sandbox-")
        os.chmod(self.base_dir, 0o755)
        for sub in ("warm", "jobs"):
            os.makedirs(os.path.join(self.base_dir, sub), mode=0o755)
        self.log_path = os.path.join(self.base_dir, "worker.log")
        command = [sys.executable, "-m", "synth_modules.sandbox.worker", "--base-dir", self.base_dir]
        if not warm:
            command.append("--no-warm")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=worker_env(self.base_dir, options.device),
                cwd=self.base_dir,
                start_new_session=True,  # a terminal's Ctrl-C reaches the pool, which shuts workers down
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.channel = Channel(self.proc.stdout.fileno(), self.proc.stdin.fileno())
        self.ready: dict[str, Any] | None = None
        self.channel.send({"op": "config", "options": options_to_dict(options)})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - _LOG_TAIL))
                return fh.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def _receive(self, timeout: float) -> dict[str, Any]:
        try:
            return self.channel.receive(timeout)
        except ChannelClosed as exc:
            code = self.proc.wait(timeout=10)
            raise WorkerFailure(f"sandbox worker exited (code {code})") from exc
        except ChannelTimeout as exc:
            raise WorkerFailure(f"sandbox worker did not answer within {timeout:g} s") from exc
        except (OSError, ValueError) as exc:
            raise WorkerFailure(f"sandbox worker protocol error: {exc}") from exc

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> dict[str, Any]:
        if self.ready is None:
            message = self._receive(timeout)
            if message.get("op") != "ready":
                raise WorkerFailure(f"unexpected worker message {message.get('op')!r}")
            self.ready = message
        return self.ready

    def run(self, job: ValidationJob, options: SandboxOptions) -> dict[str, Any]:
        """Send one job and wait for its result message."""
        timeout = float(job.extra.get("timeout_s", options.timeout_s))
        try:
            self.channel.send(
                {"op": "job", "job": dataclasses.asdict(job), "options": options_to_dict(options)}
            )
        except OSError as exc:
            raise WorkerFailure(f"sandbox worker is gone: {exc}") from exc
        message = self._receive(timeout + REPLY_GRACE_S)
        if message.get("op") != "result":
            raise WorkerFailure(f"unexpected worker message {message.get('op')!r}")
        return message

    def close(self, kill: bool = False) -> None:
        """Ask the worker to exit (or kill it), wait for it, and remove its directory."""
        if not kill and self.alive():
            with contextlib.suppress(OSError):
                self.channel.send({"op": "exit"})
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill = True
        if kill and self.alive():
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, 9)
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _crash(message: str, stage: Stage = Stage.SANDBOX) -> Verdict:
    return Verdict.reject(stage, Category.CRASH, message)


class SandboxPool:
    """Validate programs in isolated, warm worker processes. Thread-safe; use as a context manager."""

    def __init__(self, num_workers: int = 2, options: SandboxOptions | None = None):
        if num_workers < 1:
            raise ValueError("num_workers must be >= 1")
        self.options = options or SandboxOptions()
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

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- worker slots ------------------------------------------------------------------------------------
    def _start(self, slot: int, warm: bool) -> WorkerProcess:
        worker = WorkerProcess(self.options, warm=warm)
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
