"""Where the offline proposer starts: Inductor's own Triton code for each task, with its launch record.

On CUDA the code is captured by export-pairs' sandboxed workers (kernel_search/tasks/capture.py, the same capture
`kernel_search.tasks.inductor_candidates` uses for its ModelNew candidates) and cached as one JSON per task; the `triton-launch` space needs the capture's launch record (`capture_info`), not only the code. Rows
of an export-pairs `pairs.jsonl` work too (CI uses the committed H200 captures), retargeted to CPU buffers for
Triton's interpreter when the evaluator runs on CPU.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernel_search.spaces.base import SpaceUnavailable, TaskSpace
from kernel_search.spaces.triton_launch import TritonLaunchSpace
from kernel_search.tasks import TASK_CLASS, Task
from kernel_search.tasks.capture import capture_tasks

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
    from kernel_search.tuning.pair_targets import pair_task_source

    return pair_task_source(row)


def pairs_from_rows(pairs_path: str, tasks: list[Task], *, cpu: bool) -> dict[str, Any]:
    """Each task's pair from an export-pairs pairs.jsonl, matched by the task's id (export-seeds) or name."""
    rows = [json.loads(line) for line in Path(pairs_path).read_text(encoding="utf-8").splitlines() if line]
    by_key = {str(r.get("id")): r for r in rows} | {str(r.get("entry_point")): r for r in rows}
    pairs: dict[str, Any] = {}
    for task in tasks:
        row = (
            by_key.get(str(task.meta.get("id")))
            or by_key.get(task.name)
            or by_key.get(task.name.split("_", 1)[-1])
        )
        pairs[task.name] = pair_from_export_row(row, cpu=cpu) if row else f"not in {pairs_path}"
    return pairs


# ----- capture on CUDA ----------------------------------------------------------------------------------------
def capture_pairs(tasks: list[Task], cache_dir: Path, device: str, jobs: int = 4) -> dict[str, Pair | str]:
    """Every task's pair (or the reason it has none), captured in the sandbox's workers and cached under
    `cache_dir` by task content."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Pair | str] = {}
    missing = []
    for task in tasks:
        path = cache_dir / f"{task.sha}.json"
        if path.is_file():
            found[task.name] = json.loads(path.read_text(encoding="utf-8"))
        else:
            missing.append(task)
    captured = capture_tasks(missing, device, jobs, log_dir=cache_dir / "logs")
    for task in missing:
        outcome = captured[task.name]
        if isinstance(outcome, dict):
            outcome = {
                "id": Path(task.path).stem,
                "entry_point": TASK_CLASS,
                **{k: outcome[k] for k in ("triton_code", "capture_info", "kernel_count")},
            }
            (cache_dir / f"{task.sha}.json").write_text(json.dumps(outcome), encoding="utf-8")
        found[task.name] = outcome
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
