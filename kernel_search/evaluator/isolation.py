"""The evaluator's glue to the project's one sandbox: one fresh self-confining service worker per candidate.

`run_isolated` starts `synth_modules.sandbox.service` serving the evaluator's handler (worker.py) through
`spawn_isolated`: a spawned interpreter (CUDA is initialised there, never in a fork) with the sandbox's
allow-listed environment, its own session, Landlock, rlimits, no capabilities and die-with-parent. It sends the
one request, collects the handler's progress messages and its reply, then ends the worker and checks that its
whole process tree is gone; a timeout kills the tree. What is evaluator-specific lives here: the device pinning
and heap poisoning of the environment, the memory and CPU-time caps, the shared compile cache of the trusted
baseline workers, and the message list `_interpret` (api.py) reads.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from kernel_search.evaluator.poison import HEAP_PERTURB_BYTE
from synth_modules.sandbox.environment import device_environment
from synth_modules.sandbox.isolation import require_landlock
from synth_modules.sandbox.spawn import WorkerFailure, WorkerTimeout, spawn_isolated

HANDLER = "kernel_search.evaluator.worker"
_SETTINGS_KEYS = (
    "device",
    "cpu_threads",
    "lock_dir",
    "lock_name",
)  # the request's part the worker sets up with
_CLOSE_GRACE_S = 10.0


@dataclass
class IsolationSettings:
    device: str = "cpu"
    timeout_s: float = 600.0  # the whole worker: start, setup and the request
    memory_limit_mb: int = 16384  # host address space on CPU; device memory on CUDA
    landlock: bool = True  # False: run even where Landlock is missing (the sandbox's unsafe switch)
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


def worker_environment(settings: IsolationSettings) -> dict[str, str]:
    """What the evaluator adds to the sandbox's allow-listed environment."""
    if settings.device == "cpu":  # no GPU at all; uninitialised memory is poison (poison.py)
        env = device_environment("", heap_perturb=HEAP_PERTURB_BYTE)
    else:
        env = device_environment(settings.visible_devices)  # pinned: its GPU is cuda:0 in there
    env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # no compile pool left running after the candidate
    env.update(settings.extra_env)
    return env


def run_isolated(handler: str, request: dict[str, Any], settings: IsolationSettings) -> IsolatedRun:
    """Serve `request` by `handler` in a fresh confined worker; never raises for the worker's faults.

    Messages: {"phase": "setup", "isolation", "env"} once the worker is ready, the handler's progress
    messages, then {"result": reply, "integrity": [what the candidate left patched or running]}.
    """
    # Landlock is required (fail-closed) unless the caller or the session's unsafe switch allows running without.
    allow_unsandboxed = require_landlock(not settings.landlock) == 0
    cpu = settings.device == "cpu"
    worker_settings = {k: request[k] for k in _SETTINGS_KEYS if k in request}
    worker_settings["memory_limit_mb"] = settings.memory_limit_mb
    started = time.monotonic()
    deadline = started + settings.timeout_s
    worker = spawn_isolated(
        handler,
        worker_settings,
        gpu=not cpu,
        gpu_compatible=True,  # torch imported first, uid 0 without capabilities: the recipe CUDA works with
        prepare_before_confinement=True,  # worker.prepare: CUDA initialised and device locks opened, then confined
        address_space_mb=settings.memory_limit_mb if cpu else None,  # CUDA reserves huge virtual ranges
        cpu_seconds=math.ceil(settings.timeout_s) * 4 + 60,
        allow_unsandboxed=allow_unsandboxed,
        env=worker_environment(settings),
        compile_cache_dir=settings.shared_cache_dir,
    )
    messages: list[dict[str, Any]] = []
    timed_out = False
    try:
        ready = worker.wait_ready(timeout=max(0.0, deadline - time.monotonic()))
        messages.append({"phase": "setup", "isolation": ready.get("isolation"), "env": ready.get("info")})
        reply = worker.call(request, max(0.0, deadline - time.monotonic()), on_progress=messages.append)
        messages.append({"result": reply.get("reply"), "integrity": reply.get("integrity", [])})
    except WorkerTimeout:
        timed_out = True
    except WorkerFailure:
        pass  # a silent death: no result message; the exit status and the log tail say what happened
    tail = worker.log_tail()
    worker.close(kill=timed_out, grace_s=_CLOSE_GRACE_S)  # the whole tree is gone when this returns
    return IsolatedRun(messages, worker.proc.returncode, timed_out, tail, time.monotonic() - started)
