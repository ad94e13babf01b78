"""Aggregates over a set of trajectories: fast_1 and geometric-mean speedups (KernelBench's fast_p at p=1).

fast_1 is the share of *all* tasks whose best accepted candidate beats the baseline; the geometric means are over
the tasks that have an accepted candidate (how many is reported beside them), so a failed task never inflates
them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kernel_search.loops.trajectory import Trajectory


def geomean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def aggregate(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    bests = [t.best for t in trajectories]
    eager = [b.speedup_vs_eager for b in bests if b is not None and b.speedup_vs_eager]
    compiled = [b.speedup_vs_compile for b in bests if b is not None and b.speedup_vs_compile]
    tasks = len(trajectories)
    return {
        "tasks": tasks,
        "solved": sum(b is not None for b in bests),
        "fast_1_vs_eager": sum(s > 1.0 for s in eager) / tasks if tasks else None,
        "fast_1_vs_compile": sum(s > 1.0 for s in compiled) / tasks if tasks else None,
        "geomean_speedup_vs_eager": geomean(eager),
        "geomean_speedup_vs_compile": geomean(compiled),
        "attempts": sum(len(t.attempts) for t in trajectories),
        "mean_attempts": sum(len(t.attempts) for t in trajectories) / tasks if tasks else None,
        "wall_s": round(sum(t.wall_s for t in trajectories), 2),
        "rejected_hacks": sum(len(t.summary()["hacks"]) for t in trajectories),
        "prompt_tokens": sum(t.prompt_tokens for t in trajectories),
        "completion_tokens": sum(t.completion_tokens for t in trajectories),
        "cost_usd": round(sum(t.cost_usd for t in trajectories), 6),
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_markdown(title: str, by_loop: dict[str, list[Trajectory]]) -> str:
    """results/summary.md: one aggregate row per loop, then one row per (loop, task)."""
    lines = [f"# {title}", "", "| loop | tasks | solved | fast_1 vs eager | fast_1 vs compile | geomean vs eager "
             "| geomean vs compile | attempts | hacks rejected | wall s | cost USD |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for loop, trajectories in by_loop.items():
        a = aggregate(trajectories)
        lines.append(
            f"| {loop} | {a['tasks']} | {a['solved']} | {_fmt(a['fast_1_vs_eager'], 2)} | "
            f"{_fmt(a['fast_1_vs_compile'], 2)} | {_fmt(a['geomean_speedup_vs_eager'])} | "
            f"{_fmt(a['geomean_speedup_vs_compile'])} | {a['attempts']} | {a['rejected_hacks']} | "
            f"{_fmt(a['wall_s'], 1)} | {_fmt(a['cost_usd'], 4)} |"
        )
    lines += ["", "| loop | task | attempts | best attempt | speedup vs eager | speedup vs compile | runtime us "
              "| rejected | wall s | stop |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]  # fmt: skip
    for loop, trajectories in by_loop.items():
        for t in trajectories:
            s = t.summary()
            rejected = ", ".join(f"{k} {v}" for k, v in s["rejected"].items()) or "-"
            lines.append(
                f"| {loop} | {t.task} | {s['attempts']} | {_fmt(s['best_attempt'])} | "
                f"{_fmt(s['best_speedup_vs_eager'])} | {_fmt(s['best_speedup_vs_compile'])} | "
                f"{_fmt(s['best_runtime_us'], 1)} | {rejected} | {_fmt(s['wall_s'], 1)} | {s['stop_reason']} |"
            )
    return "\n".join(lines) + "\n"
