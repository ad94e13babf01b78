"""tune-pairs: each exported pair's fastest verified launch configuration and its speedup over Inductor's own.

A pair (synth_modules/export) becomes a target: its PyTorch program as a KernelBench task (the seed exporter's
`seed_source`), its cleaned Triton code as the `triton-launch` space. After the search, `write_tuned_pairs`
writes DIR/pairs.jsonl: every input row plus `tuned_*` columns (the tuned code and launch config, runtimes of
the pair as exported and as tuned, and the speedup). Only variants the evaluator accepted (correct on fresh
inputs, re-checked after timing) are ever chosen; a pair with no faster accepted variant keeps its own code
and a speedup of 1.0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kernel_search.spaces.triton_launch import TritonLaunchSpace
from kernel_search.store.database import DB_FILE, SearchDatabase, source_hash
from kernel_search.store.rundir import write_json
from kernel_search.tuning.objective import speedup_over_best_baseline
from kernel_search.tuning.runs import Target
from kernel_search.tuning.search_space import ConfigSpace
from synth_modules.export.schema import TUNED_COLUMNS as _TUNED

TUNED_COLUMNS = tuple(c.name for c in _TUNED)  # defined once, with the dataset schema


def read_pair_rows(pairs_dir: Path) -> list[dict[str, Any]]:
    path = pairs_dir / "pairs.jsonl"
    if not path.is_file():
        raise ValueError(f"{path} does not exist: run synth-torch export-pairs first")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a torn last line
    if not rows:
        raise ValueError(f"{path} holds no pairs")
    return rows


def pair_task_sources(rows: list[dict[str, Any]]) -> list[str | Exception]:
    """Each pair's PyTorch program as a KernelBench task (class Model, flat get_init_inputs), or why not.

    The program is untrusted (generated or crawled), so its init inputs are read in the sandbox, as
    export-seeds does; nothing of it runs in this process.
    """
    from synth_modules.export.seeds import sandboxed_flat_init_inputs, seed_source
    from synth_modules.sandbox import ValidationJob

    jobs = [
        ValidationJob(id=str(row.get("id") or row["entry_point"]), source=row["python_code"],
                      entry_point=row["entry_point"])
        for row in rows
    ]  # fmt: skip
    sources: list[str | Exception] = []
    for row, (_, flat) in zip(rows, sandboxed_flat_init_inputs(jobs), strict=True):
        sources.append(
            flat if isinstance(flat, Exception) else seed_source(row["python_code"], row["entry_point"], flat)
        )
    return sources


def pair_task_source(row: dict[str, Any]) -> str:
    """One pair's task source (see `pair_task_sources`); raises when the program cannot be a task."""
    (source,) = pair_task_sources([row])
    if isinstance(source, Exception):
        raise source
    return source


def pair_targets(pairs_dir: Path, out: Path, evaluator: Any, limit: int | None = None) -> list[Target]:
    from kernel_search.tasks import load_task

    rows = read_pair_rows(pairs_dir)[:limit]
    targets = []
    for row, task_source in zip(rows, pair_task_sources(rows), strict=True):
        if isinstance(task_source, Exception):
            raise task_source
        name = str(row.get("id") or row["entry_point"])
        task_path = out / "pair_tasks" / f"{name}.py"
        task_path.parent.mkdir(parents=True, exist_ok=True)
        task_path.write_text(task_source, encoding="utf-8")
        task = load_task(task_path, name=name)
        targets.append(
            Target(
                name=name,
                make_space=lambda row=row: TritonLaunchSpace(row),
                make_evaluate=lambda task=task: (
                    lambda source, cand: evaluator.evaluate(task, source, cand).to_dict()
                ),
            )
        )
    return targets


def _runtime(database: SearchDatabase, source: str) -> tuple[float | None, dict[str, Any] | None]:
    record = database.measurement(source_hash(source))
    if record is None or speedup_over_best_baseline(record) is None:
        return None, record
    return record.get("runtime_us"), record


def write_tuned_pairs(pairs_dir: Path, out: Path, best: dict[str, Any]) -> Path:
    """DIR/pairs.jsonl with tuned_* columns, and DIR/tuned_pairs.json with the share and speedups."""
    rows = read_pair_rows(pairs_dir)
    database = SearchDatabase(out / DB_FILE)
    summary: dict[str, Any] = {"pairs": 0, "tuned": 0, "faster": 0, "speedups": []}
    tuned_rows = []
    try:
        for row in rows:
            name = str(row.get("id") or row["entry_point"])
            run = best.get("tasks", {}).get(name)
            tuned = {column: None for column in TUNED_COLUMNS}
            try:
                space = TritonLaunchSpace(row)
            except Exception:
                tuned_rows.append({**row, **tuned})
                continue
            summary["pairs"] += 1
            default = ConfigSpace(space.parameters(), space.is_valid).default_config() or {}
            default_us = _runtime(database, space.render(default))[0] if default else None
            if run is not None and run.get("best_config"):
                source = space.render(run["best_config"])
                best_us = _runtime(database, source)[0]
                if best_us and default_us:
                    summary["tuned"] += 1
                    speedup = default_us / best_us
                    if speedup > 1.0:
                        summary["faster"] += 1
                    else:  # the pair's own launch config is already the fastest accepted one
                        source, best_us, speedup = space.render(default), default_us, 1.0
                    summary["speedups"].append(round(speedup, 4))
                    tuned.update(
                        tuned_triton_code=source,
                        tuned_launch_config=json.dumps(run["best_config"] if speedup > 1.0 else default),
                        tuned_runtime_us=best_us,
                        default_runtime_us=default_us,
                        tuned_speedup_vs_default=speedup,
                    )
            tuned_rows.append({**row, **tuned})
    finally:
        database.close()
    path = out / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tuned_rows), encoding="utf-8")
    meta = pairs_dir / "meta.json"
    if meta.is_file():
        (out / "meta.json").write_text(meta.read_text(encoding="utf-8"), encoding="utf-8")
    write_json(out / "tuned_pairs.json", summary)
    return path
