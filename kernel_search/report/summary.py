"""eval-all's summary: KernelBench's fast_p, geomean speedups, category and hack counts, a per-task table.

fast_p is the share of ALL tasks whose candidate is accepted (category ok) and faster than the baseline by more
than p; a missing, wrong, hacking or fallback candidate counts as not fast. Geomean speedups are over the
accepted candidates only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from kernel_search.evaluator.result import EvalResult

FAST_P_THRESHOLDS = (1.0, 1.2, 1.5, 2.0)


def _geomean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _speedup(result: EvalResult, baseline: str) -> float | None:
    base = result.baselines.get(baseline)
    return base / result.runtime_us if base and result.runtime_us else None


def fast_p(results: Sequence[EvalResult], baseline: str, p: float) -> float:
    if not results:
        return 0.0
    fast = [r for r in results if r.counts_as_win and (_speedup(r, baseline) or 0.0) > p]
    return len(fast) / len(results)


def summarize(results: Sequence[EvalResult]) -> dict[str, Any]:
    accepted = [r for r in results if r.counts_as_win]
    baselines = sorted({b for r in results for b in r.baselines})
    seconds = [r.seconds for r in results if r.seconds]
    return {
        "tasks": len(results),
        "accepted": len(accepted),
        "categories": dict(Counter(r.category for r in results)),
        "hacks": dict(Counter(r.hack for r in results if r.hack)),
        "fast_p": {b: {str(p): fast_p(results, b, p) for p in FAST_P_THRESHOLDS} for b in baselines},
        "geomean_speedup": {b: _geomean([_speedup(r, b) or 0.0 for r in accepted]) for b in baselines},
        "seconds_per_candidate": {
            "mean": sum(seconds) / len(seconds) if seconds else None,
            "median": sorted(seconds)[len(seconds) // 2] if seconds else None,
            "total": sum(seconds),
        },
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_summary(results: Sequence[EvalResult], title: str = "kernel-search eval-all") -> str:
    summary = summarize(results)
    baselines = sorted(summary["fast_p"])
    lines = [f"# {title}", "", f"{summary['accepted']} of {summary['tasks']} candidates accepted.", ""]
    lines += ["| outcome | count |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(summary["categories"].items())]
    if summary["hacks"]:
        lines += ["", "| hack | count |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary["hacks"].items())]
    lines += ["", "## fast_p (share of all tasks) and geomean speedup (accepted candidates)", ""]
    header = " | ".join(f"fast_{p:g}" for p in FAST_P_THRESHOLDS)
    lines += [f"| baseline | {header} | geomean |", "| --- |" + " --- |" * (len(FAST_P_THRESHOLDS) + 1)]
    for b in baselines:
        cells = " | ".join(f"{summary['fast_p'][b][str(p)]:.2f}" for p in FAST_P_THRESHOLDS)
        lines.append(f"| {b} | {cells} | {_fmt(summary['geomean_speedup'][b], 3)} |")
    per = summary["seconds_per_candidate"]
    lines += ["", f"Evaluation time per candidate: mean {_fmt(per['mean'], 1)} s, median {_fmt(per['median'], 1)} s, "
              f"total {_fmt(per['total'], 0)} s.", ""]  # fmt: skip
    cols = ["task", "category", "runtime_us", *[f"{b}_us" for b in baselines], "vs_eager", "vs_compile", "s"]
    lines += ["## Per task", "", "| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in results:
        category = f"{r.category}:{r.hack}" if r.hack else r.category
        base_cells = [_fmt(r.baselines.get(b), 1) for b in baselines]
        lines.append(
            "| " + " | ".join([r.task, category, _fmt(r.runtime_us, 1), *base_cells,
                               _fmt(_speedup(r, "eager")), _fmt(_speedup(r, "compile")), _fmt(r.seconds, 1)]) + " |"
        )  # fmt: skip
    return "\n".join(lines) + "\n"
