"""Replay every strategy on a measured, exhaustively enumerated space: evaluations to 95% of the optimum.

    python benchmarks/strategy_replay.py RUN_DIR [--seeds 20] [--budgets 4,8]

RUN_DIR is a `kernel-search tune --space inductor-small` run whose every config was measured (random search
with --max-evals >= the space size). Each task's configs are looked up in the run database by the hash of their
candidate source, so the table holds real GPU measurements; each strategy then searches that table through the
ordinary Tuner API (a user-defined space and objective) for many seeds. Prints, per strategy: the mean and
worst number of evaluations to reach 95% of the exhaustive optimum (as a share of the space), and the geomean
over tasks of the best speedup found within each budget. Population sizes are scaled to the small space.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from kernel_search import Tuner
from kernel_search.spaces.inductor import InductorSpace
from kernel_search.store import DB_FILE, SearchDatabase, source_hash
from kernel_search.tuning.objective import speedup_over_best_baseline
from kernel_search.tuning.search_space import ConfigSpace, config_key

STRATEGIES = {
    "random": {},
    "ga": {"population_size": 4, "elite_count": 1},
    "de": {"population_size": 4},
    "mcts": {"batch_size": 1},
    "pattern": {},
}


def tables(run_dir: Path) -> dict[str, dict[str, float | None]]:
    """task -> {config key -> score (None: not accepted)} for tasks whose whole space was measured."""
    out: dict[str, dict[str, float | None]] = {}
    with SearchDatabase(run_dir / DB_FILE) as db:
        tasks = [r[0] for r in db.query("SELECT DISTINCT task FROM runs ORDER BY task")]
        for task in tasks:
            path = run_dir / "tasks" / f"{task.split('@')[0].replace('/', '__')}.py"
            space = InductorSpace(path.read_text(encoding="utf-8"), "cuda", "small")
            configs = list(ConfigSpace(space.parameters(), space.is_valid).all_configs())
            table: dict[str, float | None] = {}
            for config in configs:
                record = db.measurement(source_hash(space.render(config)))
                if record is None:
                    break
                table[config_key(config)] = speedup_over_best_baseline(record)
            else:
                if any(v is not None for v in table.values()):
                    out[task] = table
            out.setdefault("__params__", space.parameters())  # type: ignore[arg-type]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budgets", default="4,8")
    parser.add_argument(
        "--export-table", type=Path, help="write {params, tasks: {task: {config key: score}}}"
    )
    parser.add_argument("--table", action="store_true", help="run_dir is a table written by --export-table")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.run_dir.read_text(encoding="utf-8"))
        data = {**saved["tasks"], "__params__": saved["params"]}
    else:
        data = tables(args.run_dir)
    params = data.pop("__params__")
    if args.export_table:
        args.export_table.write_text(
            json.dumps({"params": params, "tasks": data}, indent=1), encoding="utf-8"
        )
    budgets = [int(b) for b in args.budgets.split(",")]
    size = ConfigSpace(params).size  # type: ignore[arg-type]
    print(json.dumps({"tasks": len(data), "space_size": size}))
    for strategy, options in STRATEGIES.items():
        to_95: list[int] = []
        best_at: dict[int, list[float]] = {b: [] for b in budgets}
        for table in data.values():
            optimum = max(v for v in table.values() if v is not None)
            per_task_best: dict[int, list[float]] = {b: [] for b in budgets}
            for seed in range(args.seeds):
                tuner = Tuner(params, lambda c, t=table: t[config_key(c)], strategy=strategy,  # type: ignore[arg-type]
                              max_evaluations=size, seed=seed, strategy_options=options)  # fmt: skip
                tuner.tune()
                scores = [s if math.isfinite(s) else None for _, s in tuner.history]
                running, reached = None, None
                for index, score in enumerate(scores, 1):
                    if score is not None and (running is None or score > running):
                        running = score
                    if reached is None and running is not None and running >= 0.95 * optimum:
                        reached = index
                    for b in budgets:
                        if index == b:
                            per_task_best[b].append(max(1.0, running or 1.0))
                to_95.append(reached or size)
            for b in budgets:
                best_at[b].append(statistics.mean(per_task_best[b]))
        row = {
            "strategy": strategy,
            "evals_to_95pct_mean": round(statistics.mean(to_95), 2),
            "evals_to_95pct_worst": max(to_95),
            "share_of_space_mean": round(statistics.mean(to_95) / size, 3),
        }
        for b in budgets:
            row[f"geomean_best_at_{b}"] = round(math.exp(statistics.mean(math.log(v) for v in best_at[b])), 4)
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
