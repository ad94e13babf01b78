"""Summarise a GPU data session: seed index (kept / dropped, eager time and headroom distributions), run yields
and pair verification rates, as one JSON object and a short text report.

    python benchmarks/gpu_data_summary.py --seeds SEEDS_DIR --run RUN_DIR [--run RUN2 ...] --pairs PAIRS [...]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
from pathlib import Path


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)
    deciles = statistics.quantiles(values, n=10, method="inclusive") if len(values) >= 2 else [values[0]] * 9
    quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) >= 2 else [values[0]] * 3
    return {
        "n": len(values),
        "min": round(values[0], 2),
        "p10": round(deciles[0], 2),
        "p25": round(quartiles[0], 2),
        "median": round(statistics.median(values), 2),
        "p75": round(quartiles[2], 2),
        "p90": round(deciles[8], 2),
        "max": round(values[-1], 2),
    }


def seeds_summary(folder: Path) -> dict:
    index = json.loads((folder / "index.json").read_text())
    tasks, skipped = index["tasks"], index["skipped"]
    timed = [
        t for t in tasks + skipped if t.get("graph_speedup") is not None
    ]  # judged by the CUDA-graph test
    launch_bound = [s for s in skipped if s["reason"] == "launch_bound"]
    judged = len(timed)
    return {
        "attempted": index["attempted"],
        "kept": len(tasks),
        "dropped": index["dropped"],
        "launch_bound_kept_fraction": round(1 - len(launch_bound) / judged, 3) if judged else None,
        "eager_us": _quantiles([t["eager_us"] for t in tasks]),
        "compiled_us": _quantiles([t["compiled_us"] for t in tasks]),
        "graph_speedup_all_timed": _quantiles([t["graph_speedup"] for t in timed]),
        "eager_over_compiled": _quantiles(
            [t["eager_us"] / t["compiled_us"] for t in tasks if t.get("compiled_us")]
        ),
        "headroom_eager": _quantiles([t["headroom_eager"] for t in tasks if t.get("headroom_eager")]),
        "headroom_compiled": _quantiles(
            [t["headroom_compiled"] for t in tasks if t.get("headroom_compiled")]
        ),
        "input_numel": _quantiles([sum(_numel(s) for s in t.get("input_shapes", [])) for t in tasks]),
        "peak_memory_gib": _quantiles([t.get("peak_memory_bytes", 0) / 2**30 for t in tasks]),
        "dtypes": dict(collections.Counter(t["dtype"] for t in tasks)),
        "dropped_examples": [
            {"entry_point": s["entry_point"], "reason": s["reason"], "message": s.get("message", "")[:160]}
            for s in skipped[:40]
        ],
        "peaks": {k: tasks[0].get(k) for k in ("peak_flops", "peak_bytes_per_s")} if tasks else {},
        "gpu_name": index.get("gpu_name"),
        "seconds": index.get("seconds"),
    }


def _numel(shape: list[int]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def run_summary(folder: Path) -> dict:
    accepted = (
        sum(1 for _ in (folder / "manifest.jsonl").open()) if (folder / "manifest.jsonl").exists() else 0
    )
    rejected = (
        [json.loads(line) for line in (folder / "rejected.jsonl").open()]
        if (folder / "rejected.jsonl").exists()
        else []
    )
    stats = json.loads((folder / "stats.json").read_text()) if (folder / "stats.json").exists() else {}
    accepted_ids = (
        {json.loads(line)["id"] for line in (folder / "manifest.jsonl").open()} if accepted else set()
    )
    finally_rejected = {r.get("id") for r in rejected} - accepted_ids
    decided = accepted + len(finally_rejected)
    return {
        "ledger_yield": round(accepted / decided, 4) if decided else None,  # when a run was stopped early
        "samples": stats.get("samples"),
        "accepted": accepted,
        "rejected": len(rejected),
        "rejected_by_category": dict(collections.Counter(r.get("category") for r in rejected)),
        "final_failures_by_category": stats.get("final_failures_by_category"),
        "yield": stats.get("yield"),
        "first_try_yield": stats.get("first_try_yield"),
        "elapsed_s": stats.get("elapsed_s"),
    }


def pairs_summary(folder: Path) -> dict:
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
    rows = (
        [json.loads(line) for line in (folder / "pairs.jsonl").open()]
        if (folder / "pairs.jsonl").exists()
        else []
    )
    rejected = (
        [json.loads(line) for line in (folder / "rejected.jsonl").open()]
        if (folder / "rejected.jsonl").exists()
        else []
    )
    total = len(rows) + len(rejected)
    return {
        "verified": len(rows),
        "attempted": total,
        "verified_fraction": round(len(rows) / total, 4) if total else None,
        "rejected_by_category": dict(collections.Counter(r.get("category") for r in rejected)),
        "rejected_examples": [f"{r.get('category')}: {str(r.get('message'))[:160]}" for r in rejected[:8]],
        "dtypes": dict(collections.Counter(r.get("dtype") for r in rows)),
        "max_rel_error": _quantiles([r["max_rel_error"] for r in rows]),
        "pairs_per_minute": meta.get("pairs_per_minute"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=Path, action="append", default=[])
    parser.add_argument("--run", type=Path, action="append", default=[])
    parser.add_argument("--pairs", type=Path, action="append", default=[])
    args = parser.parse_args()
    out: dict = {}
    for kind, folders, fn in (
        ("seeds", args.seeds, seeds_summary),
        ("runs", args.run, run_summary),
        ("pairs", args.pairs, pairs_summary),
    ):
        for folder in folders:
            try:
                out.setdefault(kind, {})[str(folder)] = fn(folder)
            except Exception as error:  # a phase that did not finish: say so, summarise the rest
                out.setdefault(kind, {})[str(folder)] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
