"""results/summary.md and its plots for a tune run directory, read back from the run database.

Per task and strategy: the best speedup over the better of eager and torch.compile's default, and how many
evaluations it took; per strategy: the geometric mean over tasks. Plots: best-so-far against evaluations per
strategy (each task's curve divided by the best any strategy found for it, then averaged), and the
distribution of the best speedup per task.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from kernel_search.store.database import SearchDatabase


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def best_so_far(scores: list[float | None]) -> list[float | None]:
    curve, best = [], None
    for score in scores:
        if score is not None and (best is None or score > best):
            best = score
        curve.append(best)
    return curve


def collect(database: SearchDatabase) -> dict[str, Any]:
    """{"runs": [...], "curves": {(task, strategy): [score or None per evaluation]}} from the database."""
    runs = database.query(
        "SELECT run_id, task, space, strategy, seed, stop_reason, finished_at IS NOT NULL FROM runs ORDER BY run_id"
    )
    out: dict[str, Any] = {"runs": [], "curves": {}}
    for run_id, task, space, strategy, seed, stop, finished in runs:
        rows = database.query(
            "SELECT score, config FROM trials WHERE run_id = ? AND status <> 'invalid' ORDER BY trial_index",
            [run_id],
        )
        scores = [score for score, _ in rows]
        out["curves"][(task, strategy)] = scores
        curve = best_so_far(scores)
        best = curve[-1] if curve else None  # from the trials, so an interrupted run shows what it found
        evals_to_best = next((i + 1 for i, v in enumerate(curve) if v is not None and v == best), None)
        best_config = json.loads(rows[evals_to_best - 1][1]) if evals_to_best else None
        out["runs"].append(
            {
                "run_id": run_id,
                "task": task,
                "space": space,
                "strategy": strategy,
                "seed": seed,
                "finished": bool(finished),
                "stop_reason": stop,
                "evaluations": len(scores),
                "failures": sum(1 for s in scores if s is None),
                "best_score": best,
                "best_config": best_config,
                "evaluations_to_best": evals_to_best,
            }
        )
    return out


def plot_best_so_far(curves: dict[tuple[str, str], list[float | None]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task_best: dict[str, float] = defaultdict(float)
    for (task, _), scores in curves.items():
        task_best[task] = max([task_best[task], *[s for s in scores if s is not None]])
    by_strategy: dict[str, list[list[float]]] = defaultdict(list)
    for (task, strategy), scores in curves.items():
        if task_best[task] > 0:
            by_strategy[strategy].append([(v or 0.0) / task_best[task] for v in best_so_far(scores)])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, rows in sorted(by_strategy.items()):
        length = max(len(r) for r in rows)
        mean = [sum(r[min(i, len(r) - 1)] for r in rows) / len(rows) for i in range(length)]
        ax.plot(range(1, length + 1), mean, label=f"{strategy} ({len(rows)} tasks)")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best so far / best found for the task")
    ax.set_title("Best-so-far per strategy (mean over tasks)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_speedups(values: list[float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if values:
        ax.hist(values, bins=min(30, max(5, len(values))), color="#4477aa")
        ax.axvline(1.0, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("best speedup over the better of eager and compile-default")
    ax.set_ylabel("tasks")
    ax.set_title(f"Speedup distribution ({len(values)} tasks)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_summary(database: SearchDatabase, results_dir: Path) -> dict[str, Any]:
    """Write summary.md and plots; return the best result per task (results/best_result.json's content)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    data = collect(database)
    runs = data["runs"]
    best_per_task: dict[str, dict[str, Any]] = {}
    for run in runs:
        current = best_per_task.get(run["task"])
        if run["best_score"] is not None and (current is None or run["best_score"] > current["best_score"]):
            best_per_task[run["task"]] = run
    strategies = sorted({r["strategy"] for r in runs})
    lines = ["# kernel-search tune summary", ""]
    lines += ["| task | " + " | ".join(strategies) + " |", "| --- |" + " --- |" * len(strategies)]
    for task in sorted({r["task"] for r in runs}):
        cells = []
        for strategy in strategies:
            run = next((r for r in runs if r["task"] == task and r["strategy"] == strategy), None)
            if run is None or run["best_score"] is None:
                cells.append("-" if run is None else f"no accepted candidate ({run['evaluations']} evals)")
            else:
                cells.append(f"{run['best_score']:.3f}x @ {run['evaluations_to_best']}/{run['evaluations']}")
            if run is not None and not run["finished"]:
                cells[-1] += " (interrupted)"
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Cells: best speedup over the better of eager and compile-default @ evaluations to reach it / "
        "evaluations run. A task with no accepted candidate scores 1.0x in the geomean (the baseline stays).",
        "",
    ]
    lines += ["| strategy | geomean speedup (finished runs) | tasks |", "| --- | --- | --- |"]
    for strategy in strategies:
        values = [
            max(1.0, r["best_score"] or 1.0) for r in runs if r["strategy"] == strategy and r["finished"]
        ]
        gm = geomean(values)
        lines.append(f"| {strategy} | {gm:.3f}x | {len(values)} |" if gm else f"| {strategy} | - | 0 |")
    speedups = [r["best_score"] for r in best_per_task.values()]
    curve_plot = plot_best_so_far(data["curves"], results_dir / "best_so_far.png")
    speed_plot = plot_speedups(speedups, results_dir / "speedup_distribution.png")
    lines += ["", f"![best so far]({curve_plot.name})", "", f"![speedups]({speed_plot.name})", ""]
    (results_dir / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    return {"tasks": best_per_task, "strategies": strategies, "runs": runs}
