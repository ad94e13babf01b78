"""Run loops over tasks into a run directory (the config search's layout, plus the trajectories):

metadata.json                  what was asked, versions, GPU            (kernel_search.store.RunDirectory)
run.log                        the kernel_search logger
kernel_search.duckdb           every candidate and measurement, one run per (task, loop), one trial per attempt
search/search_history.json     every attempt of every (task, loop), in order, without the code
results/best_result.json       the best accepted attempt per (task, loop), with the aggregates per loop
results/summary.md             fast_1, geomean speedups, attempts and wall time per loop and per task
trajectories/<loop>/<task>.json  the whole trajectory (code, messages, feedback): `export-traces` reads these
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel_search.loops import LOOPS, LoopBudget
from kernel_search.loops.metrics import aggregate, summary_markdown
from kernel_search.loops.proposal import Proposer
from kernel_search.loops.scoring import Scorer
from kernel_search.loops.trajectory import Attempt, Trajectory
from kernel_search.store.database import SearchDatabase, source_hash
from kernel_search.store.rundir import RunDirectory, write_json
from kernel_search.tasks import Task
from kernel_search.tuning.tuner import Trial

log = logging.getLogger("kernel_search.loops")
TRAJECTORY_DIR = "trajectories"


@dataclass
class LoopRequest:
    loops: list[str]
    budget: LoopBudget
    loop_settings: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # loop name -> constructor keywords
    seed: int = 0
    title: str = "kernel-search loops"
    jobs: int = 1  # (loop, task) runs at once: evaluations compile in parallel, timing stays one at a time


def trajectory_path(root: Path, loop: str, task: str) -> Path:
    return root / TRAJECTORY_DIR / loop / f"{task.replace('/', '__')}.json"


def _record_in_database(database: SearchDatabase, run_id: str, trajectory: Trajectory) -> None:
    for attempt in trajectory.attempts:
        trial = Trial(
            index=attempt.index,
            config=attempt.config or {"attempt": attempt.index, "origin": attempt.origin},
            score=attempt.score if attempt.accepted else -math.inf,
            status=attempt.category,
            message=attempt.message[:500],
            seconds=attempt.eval_s,
            payload={
                "origin": attempt.origin,
                "description": attempt.description,
                "hack": attempt.hack,
                "speedup_vs_eager": attempt.speedup_vs_eager,
                "speedup_vs_compile": attempt.speedup_vs_compile,
                "parent": attempt.parent,
                "stage": attempt.stage,
            },
        )
        digest = source_hash(attempt.code) if attempt.code else None
        if digest and attempt.code:
            database.add_candidate(digest, trajectory.task, f"loops:{trajectory.loop}", attempt.code)
        database.add_trial(run_id, trial, digest)
    best = trajectory.best
    database.finish_run(
        run_id, trajectory.stop_reason, best.score if best else None, best.config if best else None
    )


def history_entry(attempt: Attempt) -> dict[str, Any]:
    data = attempt.to_dict()
    for bulky in ("code", "messages"):
        data.pop(bulky, None)
    return data


def run_loops(
    tasks: list[Task],
    request: LoopRequest,
    out: Path | str,
    make_proposer: Callable[[], Proposer],
    make_scorer: Callable[[SearchDatabase], Scorer],
    metadata: dict[str, Any] | None = None,
) -> dict[str, list[Trajectory]]:
    """Every loop over every task (loops share one scorer, so identical candidates are measured once)."""
    unknown = [name for name in request.loops if name not in LOOPS]
    if unknown:
        raise ValueError(f"unknown loop(s) {', '.join(unknown)}; choose from {', '.join(LOOPS)}")
    rundir = RunDirectory(out)
    database = rundir.open({"space": "loops", "loops": request.loops, "tasks": [t.name for t in tasks],
                            "budget": vars(request.budget), "settings": request.loop_settings,
                            "seed": request.seed, **(metadata or {})})  # fmt: skip
    scorer = make_scorer(database)
    by_loop: dict[str, list[Trajectory]] = {name: [] for name in request.loops}
    jobs = [(name, task) for name in request.loops for task in tasks]

    def run_one(name: str, task: Task) -> Trajectory:
        proposer = make_proposer()  # one per (loop, task): proposers keep per-task state and clients
        try:
            loop = LOOPS[name](
                proposer, scorer, request.budget, seed=request.seed, **request.loop_settings.get(name, {})
            )
            return loop.run(task)
        finally:
            proposer.close()

    try:
        with ThreadPoolExecutor(max(1, request.jobs)) as pool:
            futures = {pool.submit(run_one, name, task): (name, task) for name, task in jobs}
            done: dict[tuple[str, str], Trajectory] = {}
            for future in as_completed(
                futures
            ):  # saved as each finishes; database writes stay on this thread
                name, task = futures[future]
                trajectory = future.result()
                run_id = f"{task.name}/loops/{name}/seed{request.seed}"
                with scorer.store_lock:
                    database.start_run(
                        run_id, task.name, "loops", name, request.seed, request.loop_settings.get(name, {})
                    )
                    _record_in_database(database, run_id, trajectory)
                trajectory.save(trajectory_path(rundir.root, name, task.name))
                done[(name, task.name)] = trajectory
        for name, task in jobs:  # the results in the order asked
            by_loop[name].append(done[(name, task.name)])
        _write_results(rundir, request, by_loop, scorer)
    finally:
        database.close()
        rundir.close()
    return by_loop


def _write_results(
    rundir: RunDirectory, request: LoopRequest, by_loop: dict[str, list[Trajectory]], scorer: Scorer
) -> None:
    rundir.write_history(
        [
            {
                "loop": loop,
                "task": t.task,
                "stop_reason": t.stop_reason,
                "attempts": [history_entry(a) for a in t.attempts],
            }
            for loop, trajectories in by_loop.items()
            for t in trajectories
        ]
    )
    best = {
        "aggregates": {loop: aggregate(trajectories) for loop, trajectories in by_loop.items()},
        "evaluations": scorer.evaluations,
        "best": [
            {"loop": loop, "task": t.task, **t.summary(), "code": t.best.code if t.best else None}
            for loop, trajectories in by_loop.items()
            for t in trajectories
        ],
    }
    rundir.write_best(best)
    write_json(rundir.root / "results" / "aggregates.json", best["aggregates"])
    rundir.summary_path.parent.mkdir(parents=True, exist_ok=True)
    rundir.summary_path.write_text(summary_markdown(request.title, by_loop), encoding="utf-8")
