"""kernel-search eval-all and tune on every visible GPU against one GPU: speedup, same verdicts, same best configs.

    python benchmarks/kernel_search_multi_gpu.py TASKS --out WORK [--candidates DIR] [--limit 30]
        [--jobs-per-gpu 2] [--space inductor-small] [--strategy random] [--max-evals 16] [--json r.json]

Four commands, each a fresh `python -m kernel_search` with its own baseline cache (nothing reused between runs):
eval-all with `--gpus all --jobs J*N`, eval-all with `--gpus 1 --jobs J`, then tune the same way with
`--parallel-tasks J*N` against `J` (one evaluation per task in flight, so strategies see the same batches
whatever the GPU count, and `--budget-s` so large that no run is cut short by time). The all-GPU runs go
first, so any warm file cache favours the one-GPU runs. Without --candidates, Inductor's code for each task
(`inductor-candidates`, not timed) is what eval-all scores. Prints wall seconds and the 1-GPU / N-GPU ratio of
each command, then compares: eval-all's (category, hack) per task, tune's (config, status) of every trial and
the best config per task. Exit status 1 when any of them differ. Not a test: it needs CUDA GPUs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernel_search.placement.devices import visible_gpu_ids  # noqa: E402


def _run(argv: list[str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "kernel_search", *argv], stdout=fh, stderr=subprocess.STDOUT
        )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed ({proc.returncode}); see {log}")
    print(f"  {' '.join(argv)}\n    {seconds:.1f} s", flush=True)
    return seconds


def _verdicts(out: Path) -> dict[str, tuple[str, str | None]]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {r["task"]: (r["category"], r["hack"]) for r in rows}


def _tune_outcome(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    history = json.loads((out / "search" / "search_history.json").read_text())
    entries = history if isinstance(history, list) else history.get("runs", [])
    trials = {e["run_id"]: [(json.dumps(t["config"], sort_keys=True), t["status"]) for t in e["trials"]]
              for e in entries}  # fmt: skip
    best = json.loads((out / "results" / "best_result.json").read_text())
    configs = {
        task: (run.get("best_config"), run.get("best_score")) for task, run in best.get("tasks", {}).items()
    }
    return trials, configs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tasks")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--candidates", default=None, help="eval-all's candidates (default: Inductor's code)")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--jobs-per-gpu", type=int, default=2)
    parser.add_argument("--space", default="inductor-small")
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--max-evals", type=int, default=16)
    parser.add_argument("--batch-scale", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    gpus = visible_gpu_ids()
    if len(gpus) < 2:
        raise SystemExit(f"needs at least 2 visible CUDA GPUs, found {len(gpus)}")
    n, per = len(gpus), max(1, args.jobs_per_gpu)
    work = args.out
    work.mkdir(parents=True, exist_ok=True)
    tasks = work / "tasks"
    if not tasks.exists():  # the first --limit tasks, so eval-all and tune see the same ones
        from kernel_search.tasks import load_tasks

        tasks.mkdir()
        for task in load_tasks(args.tasks)[: args.limit]:
            target = tasks / f"{task.name}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(task.source)
    cands = Path(args.candidates) if args.candidates else work / "candidates"
    if not args.candidates and not cands.exists():
        _run(
            ["inductor-candidates", str(tasks), "--out", str(cands), "--jobs", str(n * per)],
            work / "cands.log",
        )
    print(f"{n} GPUs ({', '.join(gpus)}), {per} evaluation(s) in flight per GPU")
    seconds: dict[str, float] = {}
    for kind in ("eval-all", "tune"):
        for label, gpu_arg, jobs in (("all", "all", n * per), ("one", "1", per)):
            out, cache = work / f"{kind}-{label}", work / f"cache-{kind}-{label}"
            if kind == "eval-all":
                argv = ["eval-all", str(tasks), str(cands), "--jobs", str(jobs)]
            else:
                argv = ["tune", str(tasks), "--space", args.space, "--strategy", args.strategy,
                        "--max-evals", str(args.max_evals), "--budget-s", "1e9", "--parallel-tasks", str(jobs),
                        "--batch-scale", str(args.batch_scale), "--no-progress"]  # fmt: skip
            argv += ["--out", str(out), "--gpus", gpu_arg, "--cache-dir", str(cache)]
            seconds[f"{kind}-{label}"] = _run(argv, work / f"{kind}-{label}.log")
    same_verdicts = _verdicts(work / "eval-all-all") == _verdicts(work / "eval-all-one")
    trials_all, best_all = _tune_outcome(work / "tune-all")
    trials_one, best_one = _tune_outcome(work / "tune-one")
    same_trials = trials_all == trials_one
    differing = {t: (best_all.get(t), best_one.get(t)) for t in best_all.keys() | best_one.keys()
                 if (best_all.get(t) or (None,))[0] != (best_one.get(t) or (None,))[0]}  # fmt: skip
    report = {
        "gpus": gpus,
        "jobs_per_gpu": per,
        "seconds": seconds,
        "speedup": {k: seconds[f"{k}-one"] / seconds[f"{k}-all"] for k in ("eval-all", "tune")},
        "same_verdicts": same_verdicts,
        "same_tune_trials": same_trials,
        "best_config_differs": {t: {"all": a, "one": b} for t, (a, b) in sorted(differing.items())},
    }
    for kind, ratio in report["speedup"].items():
        print(
            f"{kind}: {seconds[kind + '-one']:.1f} s on 1 GPU, {seconds[kind + '-all']:.1f} s on {n}: {ratio:.2f}x"
        )
    print(f"same eval-all verdicts: {same_verdicts}; same tune trials (config, status): {same_trials}; "
          f"best configs differ for {len(differing)} of {len(best_all)} tasks")  # fmt: skip
    for task, (a, b) in sorted(differing.items()):
        print(f"  {task}: {n} GPUs {a}  vs  1 GPU {b}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if same_verdicts and same_trials and not differing else 1


if __name__ == "__main__":
    raise SystemExit(main())
