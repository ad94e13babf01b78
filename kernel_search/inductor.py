"""Inductor's own generated code for a task, as a candidate `ModelNew` (the honest reference candidate).

This reuses export-pairs' capture (synth_modules/export: capture on CUDA, clean to plain Triton, wrap as
`<entry>New` with the original __init__, verify): a task's class is `Model`, so the wrapped class is `ModelNew`.
`write_inductor_candidates` captures many tasks in parallel spawned processes (CUDA is initialised in each, and
generated code is never served from a cache), one file per task named like the task, plus index.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from kernel_search.tasks import TASK_CLASS, Task

_CAPTURE_ENV = {"TORCHINDUCTOR_FX_GRAPH_CACHE": "0", "TORCHINDUCTOR_AUTOGRAD_CACHE": "0"}


def inductor_candidate(task_path: str | Path, device: str = "cuda", workdir: str | Path | None = None) -> str:
    """The source of `ModelNew` built from Inductor's code for the task (raises ExportError when it cannot)."""
    import torch

    from synth_modules.export.pairing import make_pair

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory(prefix="kernel-search-inductor-") as scratch:
        result = make_pair(Path(task_path), TASK_CLASS, device, Path(workdir or scratch))
    return result.triton_code


def _init_worker() -> None:
    os.environ.update(_CAPTURE_ENV)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="kernel-search-inductor-cache-")
    os.environ["TRITON_CACHE_DIR"] = os.path.join(os.environ["TORCHINDUCTOR_CACHE_DIR"], "triton")


def _capture(task_path: str, out_path: str, device: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        source = inductor_candidate(task_path, device)
    except Exception as error:  # ExportError (graph break, unsupported) or anything Inductor raised
        category = getattr(error, "category", None)
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        return {
            "ok": False,
            "reason": f"{category or 'error'}: {message}"[:500],
            "seconds": time.monotonic() - started,
        }
    finally:
        import torch

        torch._dynamo.reset()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(source, encoding="utf-8")
    return {"ok": True, "seconds": time.monotonic() - started}


def candidate_path(out: str | Path, task: Task) -> Path:
    """Where a task's candidate lives in a candidates folder (level folders mirrored)."""
    return Path(out) / f"{task.name}.py"


def write_inductor_candidates(
    tasks: list[Task], out: str | Path, device: str = "cuda", jobs: int = 1
) -> dict:
    """Capture every task's Inductor code as a candidate file; index.json lists what failed and why."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(
        max_workers=max(1, jobs), mp_context=get_context("spawn"), initializer=_init_worker
    ) as pool:
        futures = {t.name: pool.submit(_capture, t.path, str(candidate_path(out, t)), device) for t in tasks}
        outcomes = {}
        for name, future in futures.items():
            try:
                outcomes[name] = future.result()
            except Exception as error:  # the capture process died (a crash inside Inductor or the driver)
                outcomes[name] = {
                    "ok": False,
                    "reason": f"crash: {type(error).__name__}: {error}",
                    "seconds": 0.0,
                }
    index = {
        "source": "inductor",
        "device": device,
        "written": sorted(n for n, o in outcomes.items() if o["ok"]),
        "failed": {n: o["reason"] for n, o in outcomes.items() if not o["ok"]},
        "seconds": {n: round(o["seconds"], 2) for n, o in outcomes.items()},
    }
    (out / "index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    return index
