"""The isolated evaluation worker: `python -m kernel_search.evaluator.worker` (request JSON on stdin).

One process per candidate. It initialises the device, confines itself (isolation.confine), then runs the
stages in order, sending a `phase` message before each so the parent can name where a crash or timeout hit:
load (task, candidate, shared randomized weights) -> correctness (candidate first, on poisoned memory) ->
timing (interleaved with the eager reference) -> recheck (new data in the same buffers, then fresh buffers)
-> profile (kernels of its own, else fallback). The first failure ends the run with one `result` message.
Mode `baseline` measures the trusted torch.compile baselines instead (baselines.py), with no candidate loaded.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any


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


def main() -> int:
    from kernel_search.evaluator.isolation import confine, open_result_channel
    from kernel_search.evaluator.stop import Stop, describe, is_cuda_fault

    request = json.loads(sys.stdin.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the request pipe is done with (and Landlock cannot take a rule for a pipe)
    os.close(devnull)
    channel = open_result_channel()

    def send(**message: Any) -> None:
        channel.write(json.dumps(message, default=str) + "\n")

    device = request["device"]
    try:
        prepare_torch(
            device, int(request.get("cpu_threads", 1)), int(request["isolation"]["memory_limit_mb"])
        )
        from kernel_search.evaluator import baselines, pipeline  # torch-heavy imports before confinement
        from kernel_search.evaluator.devicelock import DeviceLock

        lock = DeviceLock(request.get("lock_dir"), request.get("lock_name") or device)
        env = {**environment(device), "lock": lock.name}
        applied = confine(request["isolation"], request["job_dir"])
        send(phase="setup", isolation=applied, env=env)
    except BaseException as error:
        send(result={"category": "crash", "message": f"worker setup failed: {describe(error)}"})
        traceback.print_exc()
        return 1
    try:
        if request["mode"] == "baseline":
            outcome = baselines.measure_baselines(request, lock, send)
        else:
            outcome = pipeline.run_candidate(request, lock, send)
        outcome.update(env=env)
        outcome.setdefault("timing", {})["exclusive_spans"] = (
            lock.exclusive_spans
        )  # when it held the GPU alone
        send(result=outcome)
    except Stop as stop:
        send(result={"category": stop.category, "message": stop.message, "hack": stop.hack, "env": env})
    except BaseException as error:
        category = "crash" if is_cuda_fault(error) else "runtime_error"
        send(result={"category": category, "message": describe(error), "env": env})
        traceback.print_exc()
    channel.flush()
    os._exit(0)  # skip interpreter teardown: a broken CUDA context or a candidate's atexit cannot change it


if __name__ == "__main__":
    raise SystemExit(main())
