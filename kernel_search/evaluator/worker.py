"""The evaluation worker: a handler served by the sandbox's self-confining service (isolation.py starts it).

One process per candidate. Before confinement `prepare` initialises the device and opens the device locks
(trusted code, no candidate yet); the service then confines the process (sandbox/isolation.confine) and calls
`setup`, then `handle` with the one request, which runs the stages in order, reporting a `phase` before each
so the parent can name where a crash or timeout hit: load (task, candidate, shared randomized weights) ->
correctness (candidate first, on poisoned memory) -> timing (interleaved with the eager reference) -> recheck
(new data in the same buffers, then fresh buffers) -> profile (kernels of its own, else fallback). The first
failure ends the run with one result. Mode `baseline` measures the trusted torch.compile baselines instead
(baselines.py), with no candidate loaded.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any

_STATE: dict[str, Any] = {}


def prepare_torch(device: str, threads: int, memory_limit_mb: int) -> Any:
    """Strict fp32 (no TF32), fixed thread count, CUDA initialised here with a device-memory cap."""
    import torch

    torch.set_num_threads(max(1, threads))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if device.startswith("cuda"):
        torch.cuda.init()
        torch.cuda.set_device(torch.device(device))
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, memory_limit_mb * (1 << 20) / total), device)
        torch.zeros(1, device=device).add_(1)
        torch.cuda.synchronize()
    return torch


def environment(device: str) -> dict[str, Any]:
    import torch

    return {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None,
        "pid": os.getpid(),
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def prepare(settings: dict[str, Any]) -> None:
    """Unconfined, before any candidate: the device (CUDA's initialisation) and the lock files (outside the
    directory the confined worker may write)."""
    from kernel_search.evaluator import baselines, pipeline  # noqa: F401 -- torch-heavy imports, trusted
    from kernel_search.evaluator.devicelock import DeviceLock

    device = settings["device"]
    prepare_torch(device, int(settings.get("cpu_threads", 1)), int(settings["memory_limit_mb"]))
    _STATE["lock"] = DeviceLock(settings.get("lock_dir"), settings.get("lock_name") or device)


def setup(settings: dict[str, Any]) -> dict[str, Any]:
    """The worker's environment, reported with `ready` (the parent's `setup` message)."""
    return {**environment(settings["device"]), "lock": _STATE["lock"].name}


def handle(request: dict[str, Any], settings: dict[str, Any], scratch: str) -> dict[str, Any]:
    """One evaluation (or the baselines) as one result dict; a candidate's fault is a category, never raised."""
    from kernel_search.evaluator import baselines, pipeline
    from kernel_search.evaluator.stop import Stop, describe, is_cuda_fault
    from synth_modules.sandbox.protocol import report_progress

    lock = _STATE["lock"]
    request = {**request, "job_dir": scratch}  # the service's fresh directory: the only writable place
    env = setup(settings)

    def send(**message: Any) -> None:
        report_progress(**json.loads(json.dumps(message, default=str)))

    try:
        if request["mode"] == "baseline":
            outcome = baselines.measure_baselines(request, lock, send)
        else:
            outcome = pipeline.run_candidate(request, lock, send)
        outcome.update(env=env)
        outcome.setdefault("timing", {})["exclusive_spans"] = (
            lock.exclusive_spans
        )  # when it held the GPU alone
    except Stop as stop:
        outcome = {"category": stop.category, "message": stop.message, "hack": stop.hack, "env": env}
    except BaseException as error:
        category = "crash" if is_cuda_fault(error) else "runtime_error"
        outcome = {"category": category, "message": describe(error), "env": env}
        traceback.print_exc()
    return json.loads(json.dumps(outcome, default=str))
