"""The numbers of a run: the pipeline's own stats rebuilt from the ledgers, plus coverage, sizes, yield over time
and the audit of the accepted programs."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from synth_modules.analysis.opnames import normalize_op
from synth_modules.report.audit import DEFAULT_LIMIT, audit_accepted
from synth_modules.report.data import RunRecords, load_run
from synth_modules.run.stats import StatsTracker

SIZE_KEYS = ("num_params", "flops", "input_numel")


def op_pairs(ops: list[str]) -> set[tuple[str, str]]:
    """Unordered pairs of distinct ops used together in one program (what coverage sampling steers)."""
    return set(itertools.combinations(sorted(set(ops)), 2))


def summarize(values: list[float]) -> dict[str, float]:
    """min / percentiles / mean / max of a sample (empty dict when there is none)."""
    if not values:
        return {}
    array = np.asarray(values, dtype=float)
    p10, p50, p90 = np.percentile(array, [10, 50, 90])
    return {
        "n": int(array.size),
        "min": float(array.min()),
        "p10": float(p10),
        "median": float(p50),
        "mean": float(array.mean()),
        "p90": float(p90),
        "max": float(array.max()),
    }


def size_values(records: RunRecords) -> dict[str, list[float]]:
    """checks.num_params / flops / input_numel of the accepted programs (missing values skipped)."""
    out: dict[str, list[float]] = {key: [] for key in SIZE_KEYS}
    for record in records.accepted:
        checks = record.get("checks") or {}
        for key in SIZE_KEYS:
            value = checks.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key].append(float(value))
    return out


def coverage(
    records: RunRecords, catalog: list[str] | None, code_ops: dict[str, int] | None
) -> dict[str, Any]:
    """Which catalog ops and op pairs the accepted programs cover (and the sampled ones, for comparison)."""
    accepted_ops: Counter[str] = Counter()
    accepted_pairs: set[tuple[str, str]] = set()
    for record in records.accepted:
        ops = record.get("sampled_ops") or []
        accepted_ops.update(set(ops))
        accepted_pairs |= op_pairs(ops)
    sampled_pairs: set[tuple[str, str]] = set()
    for record in [*records.accepted, *records.final_rejections()]:
        sampled_pairs |= op_pairs(record.get("sampled_ops") or [])
    data: dict[str, Any] = {
        "distinct_ops_accepted": len(accepted_ops),
        "distinct_op_pairs_accepted": len(accepted_pairs),
        "distinct_op_pairs_sampled": len(sampled_pairs),
        "ops_accepted": dict(accepted_ops.most_common()),
    }
    if catalog:
        names = sorted(set(catalog))
        present = [op for op in names if accepted_ops[op]]
        data.update(
            catalog_ops=len(names),
            catalog_ops_present=len(present),
            catalog_ops_present_fraction=round(len(present) / len(names), 4),
            catalog_ops_missing=[op for op in names if not accepted_ops[op]],
            catalog_pairs=len(names) * (len(names) - 1) // 2,
        )
        if code_ops is not None:
            # An op counts as present in code when its normalized form appears in some accepted forward();
            # shape-only ops (flatten, dropout, ...) have no normalized form and cannot be checked this way.
            checkable = [op for op in names if normalize_op(op) is not None]
            in_code = [op for op in checkable if code_ops.get(normalize_op(op) or "", 0)]
            data.update(
                catalog_ops_checkable_in_code=len(checkable),
                catalog_ops_present_in_code=len(in_code),
                catalog_ops_present_in_code_fraction=round(len(in_code) / len(checkable), 4)
                if checkable
                else 0.0,
                catalog_ops_missing_in_code=[op for op in checkable if op not in in_code],
            )
    return data


def yield_timeline(records: RunRecords) -> dict[str, Any]:
    """Cumulative decided / accepted samples over wall-clock time since the first decision."""
    events = records.decisions()
    if not events:
        return {"seconds": [], "decided": [], "accepted": []}
    start = events[0][0]
    seconds, decided, accepted = [], [], []
    count = 0
    for position, (when, ok) in enumerate(events, start=1):
        count += ok
        seconds.append(round(when - start, 3))
        decided.append(position)
        accepted.append(count)
    return {"seconds": seconds, "decided": decided, "accepted": accepted}


def compute_stats(
    output_dir: str | Path,
    catalog: list[str] | None = None,
    audit: bool = True,
    audit_limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """stats.json content for a run directory: the pipeline's stats (same code as the live ones) plus coverage,
    size distributions, quality-gate counts and (with `audit`) a re-check of the accepted programs."""
    records = load_run(output_dir)
    stats = StatsTracker.from_ledgers(Path(output_dir)).to_dict()
    # "now - first record" means nothing once the run is over; decided_span_s replaces it
    stats.pop("elapsed_s", None)
    threshold = float(records.config.get("dedup_threshold", 0.9))
    audit_data = audit_accepted(records, threshold, audit_limit) if audit else None
    failures = stats.get("failures_by_category", {})
    timeline = yield_timeline(records)
    wall = timeline["seconds"][-1] if timeline["seconds"] else 0.0
    stats.update(
        coverage=coverage(records, catalog, audit_data["code_ops"] if audit_data else None),
        sizes={key: summarize(values) for key, values in size_values(records).items()},
        quality={
            "contaminated": failures.get("contaminated", 0),
            "duplicates": failures.get("duplicate", 0),
            "degenerate_output": failures.get("degenerate_output", 0),
            "near_misses_accepted": stats.get("near_misses", 0),
        },
        decided_span_s=wall,
    )
    if audit_data is not None:
        stats["audit"] = {k: v for k, v in audit_data.items() if k != "code_ops"}
    return stats
