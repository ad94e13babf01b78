"""Baselines: eager, torch.compile (default) and torch.compile max-autotune-no-cudagraphs, cached per task+GPU.

The eager time of every evaluation comes from the candidate's own worker (interleaved with it). The compiled
baselines are measured in a separate trusted worker (no candidate code in that process), interleaved with
eager, and cached as data keyed by the task's content hash, the GPU name and the torch version, so a search
pays for them once per task and machine.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

COMPILE = "compile"
MAX_AUTOTUNE = "max_autotune"
COMPILE_MODES = {COMPILE: None, MAX_AUTOTUNE: "max-autotune-no-cudagraphs"}
CACHE_FILE = "baselines.json"


def cache_key(task_sha: str, gpu: str | None, torch_version: str) -> str:
    return f"{task_sha}|{gpu or 'cpu'}|{torch_version}"


class BaselineCache:
    """A JSON file of baseline measurements; safe to share between the threads of one evaluator."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, CACHE_FILE)
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        try:
            with open(self.path, encoding="utf-8") as fh:
                self._entries: dict[str, dict[str, Any]] = json.load(fh)
        except (OSError, ValueError):
            self._entries = {}

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            return dict(entry) if entry else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = {
                **entry,
                "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self._entries, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.path)


def speedup_vs_compiled(
    runtime_us: float | None, speedup_vs_eager: float | None, cached: dict[str, float], mode: str
) -> tuple[float | None, str]:
    """The candidate's speedup over a cached compiled baseline, and how it was formed.

    The cached compiled time was measured in another process at another time; dividing it by this run's
    candidate time carries every drift in between (clocks, load, a neighbour compiling) into the result.
    Both ratios that make it up are measured interleaved in one process -- compiled vs eager in the baseline
    worker, eager vs candidate in the candidate's worker -- so their product cancels that drift.
    """
    compiled, eager = cached.get(mode), cached.get("eager")
    if not compiled or not runtime_us:
        return None, ""
    if speedup_vs_eager and eager:
        return speedup_vs_eager * compiled / eager, "interleaved ratios: (compiled/eager) x (eager/candidate)"
    return compiled / runtime_us, "cached compiled time / candidate time"


# --- worker side ----------------------------------------------------------------------------------------------
def measure_baselines(request: dict[str, Any], lock: Any, send: Callable[..., None]) -> dict[str, Any]:
    """In a trusted worker: compile each requested mode, then time all of them interleaved with eager."""
    import torch

    from kernel_search.evaluator import correctness as cx
    from kernel_search.evaluator import timing
    from kernel_search.evaluator.stop import Stop, describe
    from synth_modules.sandbox.loading import import_file

    device, seed = request["device"], int(request.get("seed", 0))
    send(phase="load")
    path = os.path.join(request["job_dir"], "task.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(request["task_source"])
    try:
        task = import_file(path, prefix="kernel_search_task")
        torch.manual_seed(seed)
        model = task.Model(*task.get_init_inputs()).to(device).eval()
        cx.randomize_weights(model, seed + 1)
        inputs = cx.make_inputs(task.get_inputs, seed + 101, 0, device)
    except Exception as error:
        raise Stop("runtime_error", f"the task itself failed: {describe(error)}") from None
    fns: dict[str, Callable[[], object]] = {"eager": lambda: model(*inputs)}
    errors: dict[str, str] = {}
    for name in request.get("baselines", list(COMPILE_MODES)):
        send(phase=f"compile:{name}")
        # A copy per mode: Dynamo's guards on the module instance keep each mode's compiled code apart.
        compiled = torch.compile(copy.deepcopy(model), mode=COMPILE_MODES[name])
        try:
            # Autotuning benchmarks on the device (shared lock); a default compile is CPU work (no lock).
            guard = lock.shared() if name == MAX_AUTOTUNE else contextlib.nullcontext()
            with torch.no_grad(), guard:
                compiled(*inputs)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
            fns[name] = lambda compiled=compiled: compiled(*inputs)
        except Exception as error:  # a task Inductor cannot compile has no such baseline
            errors[name] = describe(error)
    send(phase="timing")
    settings = timing.TimingSettings(**request.get("timing", {}))
    with torch.no_grad(), lock.exclusive():
        stats = timing.measure_interleaved(fns, device, settings)
    return {
        "category": "ok",
        "baselines": {name: s.median_us for name, s in stats.items()},
        "timing": {name: s.to_dict() for name, s in stats.items()},
        "errors": errors,
    }
