"""Where the offline proposer starts: Inductor's own Triton code for each task, with its launch record.

On CUDA the code is captured with export-pairs' machinery (`synth_modules.export.pairing.make_pair`, the same
capture `kernel_search.inductor` uses for its ModelNew candidates), in spawned processes, and cached as one JSON
per task; the `triton-launch` space needs the capture's launch record (`capture_info`), not only the code. Rows
of an export-pairs `pairs.jsonl` work too (CI uses the committed H200 captures), retargeted to CPU buffers for
Triton's interpreter when the evaluator runs on CPU.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from kernel_search.spaces.base import SpaceUnavailable, TaskSpace
from kernel_search.spaces.triton_launch import TritonLaunchSpace
from kernel_search.tasks import TASK_CLASS, Task

Pair = dict[str, Any]


def pair_from_export_row(row: dict[str, Any], *, cpu: bool = False) -> Pair:
    """An export-pairs row as a loop's starting pair (the triton-launch space renders its New class as ModelNew),
    optionally allocating on CPU for TRITON_INTERPRET=1."""
    from synth_modules.export.verify import retarget_to_cpu

    code = str(row["triton_code"])
    if cpu:
        code = retarget_to_cpu(code) + "\n"
    keep = ("id", "entry_point", "capture_info")
    return {**{k: row[k] for k in keep if k in row}, "triton_code": code}


def task_source_from_export_row(row: dict[str, Any]) -> str:
    """The row's PyTorch program as a KernelBench task (the config search's `pair_task_source`)."""
    from kernel_search.pairs import pair_task_source

    return pair_task_source(row)


# ----- capture on CUDA ----------------------------------------------------------------------------------------
def _fresh_caches() -> None:
    os.environ.update({"TORCHINDUCTOR_FX_GRAPH_CACHE": "0", "TORCHINDUCTOR_AUTOGRAD_CACHE": "0"})
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="kernel-loops-inductor-")
    os.environ["TRITON_CACHE_DIR"] = os.path.join(os.environ["TORCHINDUCTOR_CACHE_DIR"], "triton")


def capture_pair(task_path: str, device: str) -> Pair:
    """Inductor's code for one task with its launch record (raises ExportError when it cannot be had)."""
    import torch

    from synth_modules.export.pairing import make_pair

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory(prefix="kernel-loops-capture-") as scratch:
        result = make_pair(Path(task_path), TASK_CLASS, device, Path(scratch))
    return {
        "id": Path(task_path).stem,
        "entry_point": TASK_CLASS,
        "triton_code": result.triton_code,
        "capture_info": result.capture_info,
        "kernel_count": result.kernel_count,
    }


def _capture_one(task_path: str, device: str) -> Pair | str:
    try:
        return capture_pair(task_path, device)
    except Exception as error:  # ExportError (graph break, unsupported) or anything Inductor raised
        category = getattr(error, "category", None) or type(error).__name__
        return f"{category}: {getattr(error, 'message', None) or error}"[:500]


def capture_pairs(tasks: list[Task], cache_dir: Path, device: str, jobs: int = 4) -> dict[str, Pair | str]:
    """Every task's pair (or the reason it has none), captured in parallel and cached under `cache_dir`."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Pair | str] = {}
    missing = []
    for task in tasks:
        path = cache_dir / f"{task.sha}.json"
        if path.is_file():
            found[task.name] = json.loads(path.read_text(encoding="utf-8"))
        else:
            missing.append(task)
    if missing:
        with ProcessPoolExecutor(
            max(1, jobs), mp_context=get_context("spawn"), initializer=_fresh_caches
        ) as pool:
            futures = {t.name: (t, pool.submit(_capture_one, t.path, device)) for t in missing}
            for name, (task, future) in futures.items():
                try:
                    outcome = future.result()
                except Exception as error:  # the capture process died
                    outcome = f"crash: {type(error).__name__}: {error}"[:500]
                found[name] = outcome
                if isinstance(outcome, dict):
                    (cache_dir / f"{task.sha}.json").write_text(json.dumps(outcome), encoding="utf-8")
    return found


def launch_space_factory(pairs: dict[str, Pair | str]) -> Callable[[Task], TaskSpace]:
    """The offline proposer's space for a task: the triton-launch space of its pair, plus source rewrites."""
    from kernel_search.loops.rewrites import RewriteSpace

    def make(task: Task) -> TaskSpace:
        pair = pairs.get(task.name)
        if not isinstance(pair, dict):
            raise SpaceUnavailable(f"no Inductor capture for {task.name}: {pair or 'not captured'}")
        return RewriteSpace(TritonLaunchSpace(pair))

    return make
