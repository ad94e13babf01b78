"""Inductor's own generated code for a task, as a candidate `ModelNew` (the honest reference candidate).

This reuses export-pairs' capture (synth_modules/export: capture on CUDA, clean to plain Triton, wrap as
`<entry>New` with the original __init__, verify) in export-pairs' sandboxed workers (kernel_search/tasks/capture.py):
a task's class is `Model`, so the wrapped class is `ModelNew`. `write_inductor_candidates` writes one file per
task named like the task, plus index.json with what failed and why.
"""

from __future__ import annotations

import json
from pathlib import Path

from kernel_search.tasks import Task, load_task
from kernel_search.tasks.capture import capture_tasks


class CaptureFailed(RuntimeError):
    """The task has no Inductor candidate (graph break, unsupported op, a crash of the task...)."""


def inductor_candidate(task_path: str | Path, device: str = "cuda") -> str:
    """The source of `ModelNew` built from Inductor's code for the task (raises CaptureFailed when it cannot)."""
    task = load_task(task_path)
    outcome = capture_tasks([task], device)[task.name]
    if isinstance(outcome, str):
        raise CaptureFailed(outcome)
    return str(outcome["triton_code"])


def candidate_path(out: str | Path, task: Task) -> Path:
    """Where a task's candidate lives in a candidates folder (level folders mirrored)."""
    return Path(out) / f"{task.name}.py"


def write_inductor_candidates(
    tasks: list[Task], out: str | Path, device: str = "cuda", jobs: int = 1
) -> dict:
    """Capture every task's Inductor code as a candidate file; index.json lists what failed and why."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = capture_tasks(tasks, device, jobs, log_dir=out / "logs")
    for task in tasks:
        outcome = outcomes[task.name]
        if isinstance(outcome, dict):
            path = candidate_path(out, task)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(outcome["triton_code"]), encoding="utf-8")
    index = {
        "source": "inductor",
        "device": device,
        "written": sorted(n for n, o in outcomes.items() if isinstance(o, dict)),
        "failed": {n: o for n, o in outcomes.items() if isinstance(o, str)},
        "seconds": {n: round(float(o["seconds"]), 2) for n, o in outcomes.items() if isinstance(o, dict)},
    }
    (out / "index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    return index
