"""One way to start, talk to and end every worker process that runs untrusted code.

`IsolatedWorker` spawns `python -m MODULE` (a fresh interpreter: nothing inherited from the parent's memory, no
CUDA context) with the allow-listed environment of environment.py, a private home directory, its own session
and process group, and a JSON-lines channel on its stdin/stdout. `kill()` ends the whole process tree and checks
that every process of it is gone. The sandbox's fork-server workers, export-pairs' GPU workers and the kernel
evaluator's workers are all IsolatedWorkers; `spawn_isolated` starts the self-confining kind (service.py).

    worker = spawn_isolated("my_pkg.my_handler", settings={...}, write_roots=[], gpu=True)
    worker.wait_ready()
    reply = worker.call({"task": ...}, timeout_s=60)  # {"op": "reply", "reply": ..., "integrity": [...]}
    worker.close()
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from synth_modules.sandbox.environment import sandbox_environment
from synth_modules.sandbox.isolation import Privileges, decide_privileges
from synth_modules.sandbox.protocol import Channel, ChannelClosed, ChannelTimeout

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_LOG_TAIL = 600


class WorkerFailure(RuntimeError):
    """The worker process died, stopped answering, or broke the protocol."""


class WorkerTimeout(WorkerFailure):
    """The worker sent nothing before the deadline (it is still running: kill it)."""


def _pythonpath(env: dict[str, str]) -> str:
    entries = [PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(entries))


class IsolatedWorker:
    """A spawned worker process in its own session with an allow-listed environment and a JSON channel."""

    def __init__(
        self,
        module: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        base_dir: str | None = None,
        cwd: str | None = None,
        log_path: str | None = None,
    ):
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="synth-worker-")
        os.chmod(self.base_dir, 0o755)
        home = os.path.join(self.base_dir, "home")
        os.makedirs(home, mode=0o755, exist_ok=True)
        environment = sandbox_environment(home)
        environment.update(env or {})
        environment["PYTHONPATH"] = _pythonpath(environment)
        self.log_path = log_path or os.path.join(self.base_dir, "worker.log")
        command = [sys.executable, "-m", module, *(args or [])]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=environment,
                cwd=cwd or PACKAGE_ROOT,
                start_new_session=True,  # own process group: killpg reaches everything it starts
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.channel = Channel(self.proc.stdout.fileno(), self.proc.stdin.fileno())
        self.ready: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except OSError as exc:
            raise WorkerFailure(f"worker is gone: {exc}") from exc

    def receive(self, timeout: float | None) -> dict[str, Any]:
        try:
            return self.channel.receive(timeout)
        except ChannelClosed as exc:
            code = self.proc.wait(timeout=10)
            raise WorkerFailure(f"worker exited (code {code})") from exc
        except ChannelTimeout as exc:
            raise WorkerTimeout(f"worker did not answer within {timeout:g} s") from exc
        except (OSError, ValueError) as exc:
            raise WorkerFailure(f"worker protocol error: {exc}") from exc

    def wait_ready(self, timeout: float = 900.0) -> dict[str, Any]:
        """The worker's `ready` message (sent once its warm-up is done)."""
        if self.ready is None:
            message = self.receive(timeout)
            if message.get("op") != "ready":  # "refused": confinement failed, the message says why
                raise WorkerFailure(
                    f"unexpected worker message {message.get('op')!r}: {message.get('message', '')}"
                )
            self.ready = message
        return self.ready

    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its answer; on a timeout the worker is killed (WorkerFailure)."""
        self.send(message)
        try:
            return self.receive(timeout_s)
        except WorkerFailure:
            self.kill()
            raise

    def call(
        self,
        request: dict[str, Any],
        timeout_s: float,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """One request to a service worker (spawn_isolated): its `{"op": "reply", "reply", "integrity"}`.

        Progress messages the handler sends first (protocol.report_progress) go to `on_progress`; the deadline
        covers all of them. On a timeout or a protocol error the worker is killed (WorkerFailure)."""
        deadline = time.monotonic() + timeout_s
        self.send({"op": "request", "request": request})
        while True:
            try:
                message = self.receive(max(0.0, deadline - time.monotonic()))
            except WorkerFailure:
                self.kill()
                raise
            if message.get("op") == "progress" and on_progress is not None:
                on_progress({k: v for k, v in message.items() if k != "op"})
                continue
            if message.get("op") != "reply":
                self.kill()
                raise WorkerFailure(
                    f"unexpected worker message {message.get('op')!r}: {message.get('message', '')}"
                )
            return message

    def tree(self) -> list[psutil.Process]:
        """The worker and every process below it (a daemon that left the group is still a descendant)."""
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def rss_bytes(self) -> int:
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def kill(self) -> None:
        """SIGKILL the process group and every descendant, reap the worker, and verify none is left."""
        procs = self.tree()
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.proc.wait()
        _, alive = psutil.wait_procs(procs[1:], timeout=5)
        if alive or _group_members(self.proc.pid):
            raise WorkerFailure(f"processes survived SIGKILL: {[p.pid for p in alive]}")

    def log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - _LOG_TAIL))
                return fh.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def close(self, kill: bool = False, grace_s: float = 15.0) -> None:
        """Ask the worker to exit (or kill it), make sure its whole tree is gone, remove its directory."""
        if not kill and self.alive():
            with contextlib.suppress(WorkerFailure):
                self.send({"op": "exit"})
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                kill = True
        if kill or self.alive() or _group_members(self.proc.pid):
            with contextlib.suppress(WorkerFailure):
                self.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (zombies already reaped by nobody count as gone)."""
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
    return members


@functools.lru_cache(maxsize=8)
def _privileges(readable: tuple[str, ...], gpu: bool) -> Privileges:
    """Decided once per process and set of paths (the probe forks a throw-away child)."""
    return decide_privileges(list(readable), gpu=gpu)


def spawn_isolated(
    handler: str,
    settings: dict[str, Any] | None = None,
    *,
    read_roots: list[str] | None = None,
    gpu: bool = False,
    address_space_mb: int | None = None,
    allow_unsandboxed: bool = False,
    env: dict[str, str] | None = None,
    log_path: str | None = None,
    gpu_compatible: bool | None = None,
    shared_write_roots: list[str] | None = None,
    cpu_seconds: int | None = None,
    compile_cache_dir: str | None = None,
    prepare_before_confinement: bool = False,
) -> IsolatedWorker:
    """Start a self-confining worker (service.py) that serves `handler`'s `handle(request, settings, scratch)`.

    The worker applies every layer (Landlock: writes only beneath its own directory, reads only system and
    package paths plus `read_roots`; privilege drop; rlimits; empty network namespace when root) before it
    imports `handler`, so CUDA and the first program start confined. It answers each request with
    `{"op": "reply", "reply": ..., "integrity": [...]}` and exits after a reply whose integrity list is not
    empty (something patched or left running): start a new one then. Call `isolation.require_landlock`
    first to refuse early with a clear message; the worker refuses on its own too.

    Trusted workers only: `compile_cache_dir` keeps the Inductor/Triton caches there between workers (the kernel
    evaluator's baselines); `prepare_before_confinement` imports the handler and runs its `prepare(settings)`
    before confining (CUDA initialised the way the evaluator's H200 workers were validated; no program yet).
    """
    # CUDA's cuInit failed (error 304, "OS call failed") in a worker that had switched to `nobody` and moved
    # into an empty network namespace before importing torch, on the H200 host (2026-12-02), where the kernel
    # evaluator's recipe works: torch imported first, uid 0 without capabilities, no network namespace. GPU
    # workers follow that recipe (Landlock still refuses TCP, signals and ptrace outside the sandbox).
    gpu_compatible = gpu if gpu_compatible is None else gpu_compatible
    if gpu_compatible:
        privileges = Privileges(ids=None, drop_caps=os.geteuid() == 0)
    else:
        privileges = _privileges(tuple(read_roots or ()), gpu)
    base_dir = tempfile.mkdtemp(prefix="synth-isolated-")
    scratch = os.path.join(base_dir, "run")
    os.makedirs(scratch, mode=0o700)
    if privileges.ids:
        os.chown(scratch, *privileges.ids)  # the worker's only writable place, and nobody else's
    spec = {
        "handler": handler,
        "settings": settings or {},
        "scratch": scratch,
        "privileges": {"ids": privileges.ids, "drop_caps": privileges.drop_caps},
        "confinement": {
            # shared ones and the compile cache: trusted coordination only
            "write_roots": [
                scratch,
                *(shared_write_roots or []),
                *([compile_cache_dir] if compile_cache_dir else []),
            ],
            "read_roots": [PACKAGE_ROOT, *(read_roots or [])],
            "address_space_mb": address_space_mb,
            "cpu_seconds": cpu_seconds,
            "gpu": gpu,
            "allow_unsandboxed": allow_unsandboxed,
            "network_namespace": not gpu_compatible,
        },
        "preimport": ["torch"]
        if gpu_compatible
        else [],  # imported before confinement; CUDA is not initialised
        "prepare": prepare_before_confinement,
        "cache_dir": compile_cache_dir,
    }
    cache = compile_cache_dir or scratch
    extra_env = {"TORCHINDUCTOR_CACHE_DIR": os.path.join(cache, "inductor"), "HOME": scratch}
    extra_env.update(TRITON_CACHE_DIR=os.path.join(cache, "triton"), TMPDIR=scratch)
    extra_env["CUDA_CACHE_DISABLE"] = "1"  # the driver's JIT cache under HOME would outlive a program
    extra_env.update(env or {})
    return IsolatedWorker(
        "synth_modules.sandbox.service",
        ["--spec", json.dumps(spec)],
        env=extra_env,
        base_dir=base_dir,
        log_path=log_path,
    )


def wait_all_gone(workers: list[IsolatedWorker], timeout_s: float = 10.0) -> bool:
    """True once no process of any of `workers` is alive (for tests and shutdown checks)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(w.alive() or _group_members(w.pid) for w in workers):
            return True
        time.sleep(0.05)
    return False
