"""`--evaluate-all`: validate deduced programs in the generator's sandbox and export the accepted ones.

Each program runs eager twice, then torch.compile (Inductor) compared against eager and against an eager
float64 reference copy of the model and inputs. Accepted programs go to the synthetic data dir in the program
file format with a `manifest.jsonl` whose rows carry the KernelBook provenance columns (repo_name, sha, stars,
licenses, repo_link), so export-pairs / export-hf treat them like any generated program.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from github_index.generate import EXTRA_ALLOWED_IMPORTS, INDEX_FILE, STATIC_POLICY, Selection
from synth_modules.run.store import MANIFEST_FILE, REJECTED_FILE, atomic_write_text, read_jsonl
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.types import Verdict

COMPILE_MODES = ("dynamo",)


def evaluated_file(selection: Selection) -> str:
    """Per-shard ledger name, so shards running at once never share a file."""
    if selection.shard_total == 1:
        return "evaluated.jsonl"
    return f"evaluated-{selection.shard_num}of{selection.shard_total}.jsonl"


def sandbox_options(
    device: str = "cpu",
    backend: str = "inductor",
    compile_mode: str = "dynamo",
    timeout_s: float = 120.0,
    memory_limit_mb: int = 4096,
    degenerate_checks: bool = False,
    allow_unsandboxed: bool = False,
    allow_graph_breaks: bool = True,
) -> SandboxOptions:
    """Sandbox settings for repository code: wider imports, fp64 reference on.

    Degenerate checks are off by default: a real model whose output does not depend on its input values
    (a positional embedding, a mask builder) is still a correct compile target, unlike a synthetic program.
    Graph breaks are allowed by default (paritybench counts a model that compiles with breaks as compiled).
    """
    if compile_mode not in COMPILE_MODES:
        raise ValueError(
            f"unsupported --compile-mode {compile_mode!r} (supported: {', '.join(COMPILE_MODES)})"
        )
    return SandboxOptions(
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb,
        compile=True,
        device=device,
        degenerate_checks=degenerate_checks,
        compile_backend=backend,
        static_policy=STATIC_POLICY,
        extra_allowed_imports=EXTRA_ALLOWED_IMPORTS,
        fp64_reference=True,
        allow_unsandboxed=allow_unsandboxed,
        allow_graph_breaks=allow_graph_breaks,
    )


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def manifest_row(row: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    """A manifest line in the run-directory contract's fields plus the provenance columns."""
    return {
        "id": row["id"],
        "entry_point": row["entry_point"],
        "file": f"{row['entry_point']}.py",
        "sampled_ops": [],
        "final_pattern": [],
        "backend": "github",
        "model": "",
        "seed": 0,
        "prompt_sha256": "",
        "input_shapes": verdict.input_shapes,
        "output_shapes": verdict.output_shapes,
        "timings": verdict.timings,
        "checks": verdict.checks,
        "synthetic": False,
        "module_name": row["class_name"],
        "path": row["path"],
        "repo_name": row["repo_name"],
        "sha": row.get("sha", ""),
        "stars": row.get("stars", 0),
        "licenses": row.get("licenses", []),
        "repo_link": row.get("repo_link", ""),
    }


def deduced_rows(run_dir: Path, selection: Selection) -> list[dict[str, Any]]:
    rows = [r for r in read_jsonl(run_dir / INDEX_FILE) if r.get("deduced")]
    return selection.apply(rows)


def evaluate_all(
    run_dir: Path,
    data_dir: Path,
    selection: Selection,
    options: SandboxOptions,
    jobs: int = 1,
    progress: bool = False,
) -> dict[str, int]:
    """Validate the selected deduced programs; resumable (ids already in the ledger are skipped)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ledger = run_dir / evaluated_file(selection)
    done = {r["id"] for r in read_jsonl(ledger)}
    todo = [r for r in deduced_rows(run_dir, selection) if r["id"] not in done]
    counts = {"evaluated": 0, "matched": 0, "skipped_done": len(done)}
    with SandboxPool(max(1, jobs), options) as pool:
        for row, verdict in _validate(pool, run_dir, todo):
            counts["evaluated"] += 1
            result = {"id": row["id"], **verdict.to_dict()}
            if verdict.ok:
                counts["matched"] += 1
                source = (run_dir / row["file"]).read_text()
                atomic_write_text(data_dir / f"{row['entry_point']}.py", source)
                _append(data_dir / MANIFEST_FILE, manifest_row(row, verdict))
            else:
                _append(
                    data_dir / REJECTED_FILE,
                    {
                        "id": row["id"],
                        "stage": verdict.stage,
                        "category": verdict.category,
                        "message": verdict.message,
                        "sampled_ops": [],
                        "backend": "github",
                        "final": True,
                    },
                )
            _append(ledger, result)
            if progress and counts["evaluated"] % 10 == 0:
                print(f"evaluated {counts['evaluated']}/{len(todo)} matched {counts['matched']}", flush=True)
    return counts


def _validate(
    pool: SandboxPool, run_dir: Path, rows: list[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], Verdict]]:
    futures: list[tuple[dict[str, Any], Future[Verdict]]] = []
    for row in rows:
        source = (run_dir / row["file"]).read_text()
        futures.append(
            (row, pool.submit(ValidationJob(id=row["id"], source=source, entry_point=row["entry_point"])))
        )
    for row, future in futures:
        yield row, future.result()
