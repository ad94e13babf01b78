"""The one place the evaluator touches the project's sandbox: spawn a confined worker, collect its messages.

Parent side, `run_isolated`: a fresh interpreter (`python -m <module>`, so CUDA is initialised there and never
in a forked child) in its own session and process group, with a scrubbed environment, private temp / cache /
extension dirs, a request on stdin and JSON-line messages on a dedicated pipe; on timeout the whole process
group is killed. Worker side, `confine`: rlimits, no capabilities, die-with-parent, a memory cap and Landlock
(writes only to the private dir), using `synth_modules.sandbox` primitives. Another isolation layer can replace
this module without touching the rest of the evaluator: only these two functions are used elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from kernel_search.evaluator.poison import HEAP_PERTURB_BYTE
from synth_modules.sandbox import landlock, limits
from synth_modules.sandbox.environment import sandbox_environment
from synth_modules.sandbox.isolation import UNSAFE_ENV, SandboxUnavailableError

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULT_FD_ENV = "KERNEL_SEARCH_RESULT_FD"
_MAX_NEW_TASKS = 1024  # threads count against RLIMIT_NPROC; a fork bomb stops here
_STDERR_TAIL = 4000


@dataclass
class IsolationSettings:
    device: str = "cpu"
    timeout_s: float = 600.0
    memory_limit_mb: int = 16384  # host address space on CPU; device memory on CUDA
    landlock: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. TRITON_INTERPRET=1
    shared_cache_dir: str | None = None  # trusted workers only (baselines): a compile cache kept between runs
    visible_devices: str | None = (
        None  # CUDA_VISIBLE_DEVICES of the worker: its one GPU (kernel_search/devices)
    )


@dataclass
class IsolatedRun:
    messages: list[dict[str, Any]]
    returncode: int | None
    timed_out: bool
    stderr_tail: str
    seconds: float

    def last(self, key: str) -> Any:
        """The value of `key` in the latest message that has it (None when none has)."""
        for message in reversed(self.messages):
            if key in message:
                return message[key]
        return None


def _private_env(job_dir: str, settings: IsolationSettings) -> dict[str, str]:
    env = sandbox_environment(job_dir)  # the sandbox's allow-list: no API key or token reaches a candidate
    if settings.device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", HIP_VISIBLE_DEVICES="")
        env["MALLOC_PERTURB_"] = str(HEAP_PERTURB_BYTE)  # uninitialised CPU memory is poison, reliably
    cache = settings.shared_cache_dir or job_dir
    python_path = [PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        PYTHONPATH=os.pathsep.join(dict.fromkeys(python_path)),
        HOME=job_dir,
        TMPDIR=job_dir,
        XDG_CACHE_HOME=os.path.join(job_dir, ".cache"),
        TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"),
        TRITON_CACHE_DIR=os.path.join(cache, "triton"),
        TORCH_EXTENSIONS_DIR=os.path.join(job_dir, "torch_extensions"),
        TORCHINDUCTOR_COMPILE_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings.extra_env)
    if settings.visible_devices is not None and settings.device != "cpu":
        env["CUDA_VISIBLE_DEVICES"] = settings.visible_devices  # pinned to its GPU: it is cuda:0 in there
    return env


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read_messages(fd: int, deadline: float, messages: list[dict[str, Any]]) -> bool:
    """Collect JSON lines from `fd` until a `result` message or EOF (True) or the deadline (False).

    A result ends the reading even if the pipe stays open: a forked grandchild may hold its write end.
    """
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not selector.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return True
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    if isinstance(message, dict):
                        messages.append(message)
                        if "result" in message:
                            return True


def run_isolated(module: str, request: dict[str, Any], settings: IsolationSettings) -> IsolatedRun:
    """Run `python -m module` confined, feed it `request`, return its messages; never raises for its faults."""
    job_dir = tempfile.mkdtemp(prefix="kernel-search-")
    os.chmod(job_dir, 0o700)
    read_fd, write_fd = os.pipe()
    # Landlock is required (fail-closed) unless the user set the sandbox's unsafe switch for the session.
    allow_unsandboxed = landlock.abi_version() == 0 and os.environ.get(UNSAFE_ENV) == "1"
    isolation = {**settings.__dict__, "allow_unsandboxed": allow_unsandboxed}
    request = {**request, "job_dir": job_dir, "isolation": isolation}
    env = _private_env(job_dir, settings)
    env[RESULT_FD_ENV] = str(write_fd)
    started = time.monotonic()
    messages: list[dict[str, Any]] = []
    stderr_path = os.path.join(job_dir, "stderr.txt")
    try:
        with open(stderr_path, "wb") as stderr, open(os.devnull, "wb") as devnull:
            process = subprocess.Popen(
                [sys.executable, "-m", module],
                stdin=subprocess.PIPE,
                stdout=devnull,
                stderr=stderr,
                env=env,
                cwd=job_dir,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        os.close(write_fd)
        write_fd = -1
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(json.dumps(request).encode())
            process.stdin.close()
        finished = _read_messages(read_fd, started + settings.timeout_s, messages)
        if finished:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(
                    timeout=10.0
                )  # it exits right after its result; the group is killed below anyway
        _kill_group(process.pid)  # leftovers of the candidate (daemons, grandchildren) die with the group
        returncode = process.wait()
        with open(stderr_path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(stderr_path) - _STDERR_TAIL))
            tail = fh.read().decode(errors="replace")
        return IsolatedRun(messages, returncode, not finished, tail, time.monotonic() - started)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
        shutil.rmtree(job_dir, ignore_errors=True)


# --- worker side ------------------------------------------------------------------------------------------
def _task_count(uid: int) -> int:
    """Threads of every process of `uid` (RLIMIT_NPROC counts threads, not just processes)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
                if int(fields.get("Uid", "-1").split()[0]) == uid:
                    count += int(fields.get("Threads", "1"))
    return count


def confine(settings: dict[str, Any], job_dir: str) -> dict[str, Any]:
    """Apply the worker's limits (call once, after importing torch, before any untrusted code)."""
    applied: dict[str, Any] = {}
    if settings["device"] == "cpu":  # CUDA reserves huge virtual ranges: an address-space cap would break it
        limits.set_memory_limit(int(settings["memory_limit_mb"]))
        applied["memory"] = f"address space +{settings['memory_limit_mb']} MiB"
    limits.set_process_limits(
        cpu_seconds=math.ceil(float(settings["timeout_s"])) * 4 + 60,
        max_processes=_task_count(os.geteuid()) + _MAX_NEW_TASKS,
    )
    if os.geteuid() == 0:
        limits.drop_capabilities()
        applied["user"] = "uid 0 without capabilities"
    limits.die_with_parent()
    if settings.get("landlock", True):
        writable = [job_dir, os.devnull]
        if settings["device"] != "cpu":
            writable += limits.gpu_device_files()
        if settings.get("shared_cache_dir"):
            writable.append(settings["shared_cache_dir"])
        applied["landlock"] = landlock.restrict(limits.read_roots([PACKAGE_ROOT]), writable)
        if applied["landlock"] == 0 and not settings.get("allow_unsandboxed"):
            raise SandboxUnavailableError(
                f"Landlock is unavailable; refusing to run the candidate ({UNSAFE_ENV}=1 to allow)"
            )
    return applied


def open_result_channel() -> Any:
    """The worker's end of the message pipe, as a line-buffered text file."""
    fd = int(os.environ.pop(RESULT_FD_ENV))
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8")
