"""Inductor's own Triton code for many tasks, captured in the sandbox's workers (export-pairs' pool).

A task is untrusted code (LLM-written, crawled from GitHub, handed in by a user), and capturing it means
running it: so it runs only where export-pairs runs programs, in `synth_modules.export.gpu_workers.WorkerPool`
(spawned self-confining workers: allow-listed environment, Landlock, no privileges, memory caps, process-tree
kill on timeout, CUDA initialised after confinement). The task travels as text; nothing it writes is read back.
The candidate files of `kernel-search inductor` and the loops' starting pairs both come from here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from kernel_search.tasks import TASK_CLASS, Task

Capture = dict[
    str, Any
]  # the worker's verified pair: triton_code, capture_info, kernel_count, errors, seconds
DEFAULT_TIMEOUT_S = 900.0


def _worker_gpus(device: str) -> list[str | None]:
    """GPU ids for the workers (one per slot, round robin); on CPU one slot without a GPU."""
    if device == "cpu":
        return [None]
    from synth_modules.export.pairs import visible_gpus

    return list(visible_gpus(device))  # CudaRequiredError (a clear message) when there is no CUDA


def capture_tasks(
    tasks: list[Task],
    device: str = "cuda",
    jobs: int = 1,
    log_dir: str | Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    allow_unsandboxed: bool = False,
) -> dict[str, Capture | str]:
    """Each task's capture, or the categorised reason it has none (`category: message`); never raises for a
    task's own fault. A crash or timeout is retried once on fresh workers, as export-pairs does."""
    from synth_modules.export.gpu_workers import WorkerPool
    from synth_modules.export.pairs import run_with_retry

    if not tasks:
        return {}
    gpus = _worker_gpus(device)
    logs = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="kernel-search-capture-"))
    settings = {"device": "cpu" if device == "cpu" else "cuda"}
    requests = [{"id": t.name, "source": t.source, "entry_point": TASK_CLASS} for t in tasks]

    def run_batch(batch: list[dict[str, Any]]):
        size = max(1, min(jobs, len(batch)))
        with WorkerPool(size, gpus, settings, timeout_s, logs, allow_unsandboxed=allow_unsandboxed) as pool:
            yield from pool.run(batch)

    found: dict[str, Capture | str] = {}
    for reply in run_with_retry(run_batch, requests):
        name = str(reply.pop("id"))
        reply.pop("env", None)
        if reply.pop("ok", False):
            found[name] = reply
        else:
            found[name] = f"{reply.get('category', 'crash')}: {reply.get('message', '')}"[:500]
    return found
