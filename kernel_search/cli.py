"""`kernel-search`: eval one candidate, eval-all over task and candidate folders, Inductor candidates.

    kernel-search eval TASK.py CANDIDATE.py [--device cuda|cpu] [--json]
    kernel-search eval-all TASKS CANDIDATES --out R [--jobs N]       # R/results.jsonl, R/summary.md
    kernel-search inductor-candidates TASKS --out CANDIDATES [--jobs N]

Bad arguments (a missing file, a folder that holds no task) are one clear error and exit status 2 before any
work; a candidate's failure is a result (status 0), never an exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from kernel_search.evaluator import EvalOptions, EvalResult, Evaluator, TimingSettings
from kernel_search.evaluator.baselines import COMPILE_MODES
from kernel_search.loops import cli as loops_cli
from kernel_search.loops import traces as export_traces
from kernel_search.report import render_summary
from kernel_search.research import cli as research_cli
from kernel_search.tasks import Task, TaskError, load_task, load_tasks
from kernel_search.tasks.inductor_candidates import candidate_path
from kernel_search.tuning import cli as tune_cli


def _options(args: argparse.Namespace) -> EvalOptions:
    baselines = tuple(b for b in args.baselines.split(",") if b) if args.baselines != "none" else ()
    env = dict(item.split("=", 1) for item in args.env)
    return EvalOptions(
        timeout_s=args.timeout_s,
        baseline_timeout_s=args.baseline_timeout_s,
        baselines=baselines,
        cache_dir=args.cache_dir,
        seed=args.seed,
        timing=TimingSettings(min_reps=args.reps, budget_s=args.budget_s),
        extra_env=env,
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per candidate, worker start included")
    parser.add_argument(
        "--baseline-timeout-s", type=float, default=900.0, help="per task's compiled baselines"
    )
    parser.add_argument(
        "--baselines",
        default=",".join(COMPILE_MODES),
        help=f"comma-separated compiled baselines ({', '.join(COMPILE_MODES)}) or 'none'; eager is always timed",
    )
    parser.add_argument("--cache-dir", default=None, help="baseline cache and device locks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=30, help="minimum timed repetitions (>= 30)")
    parser.add_argument("--budget-s", type=float, default=2.0, help="time for repetitions beyond the minimum")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the worker, e.g. TRITON_INTERPRET=1"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kernel-search", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("eval", help="evaluate one candidate for one task")
    one.add_argument("task")
    one.add_argument("candidate")
    one.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _common(one)
    many = sub.add_parser("eval-all", help="evaluate a folder of candidates against a folder of tasks")
    many.add_argument("tasks")
    many.add_argument("candidates", help="folder with one <task name>.py per task")
    many.add_argument("--out", required=True)
    many.add_argument(
        "--jobs", type=int, default=None, help="parallel workers (default one per GPU; timing serial per GPU)"
    )
    many.add_argument("--limit", type=int, default=0, help="only the first N tasks")
    _common(many)
    from kernel_search import placement  # --gpus, --executor ray, --ray-address

    placement.add_arguments(many)
    ind = sub.add_parser(
        "inductor-candidates", help="write Inductor's generated code for each task as ModelNew"
    )
    ind.add_argument("tasks")
    ind.add_argument("--out", required=True)
    ind.add_argument("--device", default="cuda")
    ind.add_argument("--jobs", type=int, default=1)
    tune_cli.register(sub)  # tune, tune-pairs (kernel_search/tuning/cli.py)
    loops_cli.register(sub)  # refine, beam, priority, evolve, loops
    export_traces.add_subcommand(sub)  # export-traces
    research_cli.register(sub)  # run, discover, demo
    return parser


def _print(result: EvalResult, as_json: bool) -> None:
    if as_json:
        print(result.to_json())
        return
    what = f"{result.category}" + (f" ({result.hack})" if result.hack else "")
    print(f"{result.task} / {result.candidate}: {what}")
    if result.message:
        print(f"  {result.message}")
    if result.runtime_us is not None:
        speed = ", ".join(f"{k} {v:.1f} us" for k, v in result.baselines.items())
        print(f"  runtime {result.runtime_us:.1f} us (IQR {result.iqr_us:.1f}); baselines: {speed}")
        if result.speedup_vs_eager:
            print(f"  speedup vs eager {result.speedup_vs_eager:.2f}x" + (
                f", vs torch.compile {result.speedup_vs_compile:.2f}x" if result.speedup_vs_compile else ""))  # fmt: skip


def cmd_eval(args: argparse.Namespace) -> int:
    task = load_task(args.task)
    candidate = Path(args.candidate)
    if not candidate.is_file():
        raise TaskError(f"{candidate}: no such candidate file")
    with Evaluator(args.device, _options(args)) as evaluator:
        result = evaluator.evaluate(task, candidate.read_text(encoding="utf-8"), candidate.stem)
    _print(result, args.json)
    return 0


def _evaluate_pair(evaluator: Evaluator, task: Task, folder: Path) -> EvalResult:
    path = candidate_path(folder, task)
    if not path.is_file():
        return EvalResult.failure(task.name, path.name, "compile_error", "no candidate file for this task")
    return evaluator.evaluate(task, path.read_text(encoding="utf-8"), path.stem)


def cmd_eval_all(args: argparse.Namespace) -> int:
    tasks = load_tasks(args.tasks)
    folder = Path(args.candidates)
    if not folder.is_dir():
        raise TaskError(f"{folder}: no such candidates folder")
    from kernel_search import placement  # local slots or Ray actors

    placement.check_arguments(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.limit:
        tasks = tasks[: args.limit]
    by_task: dict[str, EvalResult] = {}
    with (
        placement.build_evaluator(args, _options(args)) as evaluator,
        ThreadPoolExecutor(placement.default_jobs(args, evaluator)) as pool,
        open(out / "results.jsonl", "w", encoding="utf-8") as fh,
    ):
        futures = [pool.submit(_evaluate_pair, evaluator, t, folder) for t in tasks]
        for future in as_completed(
            futures
        ):  # each row lands as soon as it is known (a killed run keeps them)
            result = future.result()
            by_task[result.task] = result
            fh.write(result.to_json() + "\n")
            fh.flush()
            print(f"[{len(by_task)}/{len(tasks)}] {result.task}: {result.category}"
                  + (f":{result.hack}" if result.hack else "") + f" ({result.seconds:.1f} s)", flush=True)  # fmt: skip
    results = [by_task[t.name] for t in tasks]
    with open(out / "results.jsonl", "w", encoding="utf-8") as fh:  # rewritten in task order
        for result in results:
            fh.write(result.to_json() + "\n")
    title = f"kernel-search eval-all: {args.tasks} x {args.candidates} ({time.monotonic() - started:.0f} s)"
    (out / "summary.md").write_text(render_summary(results, title), encoding="utf-8")
    print(
        f"{sum(r.counts_as_win for r in results)}/{len(results)} accepted; wrote {out}/results.jsonl, summary.md"
    )
    return 0


def cmd_inductor(args: argparse.Namespace) -> int:
    from kernel_search.tasks.inductor_candidates import write_inductor_candidates

    tasks = load_tasks(args.tasks)
    index = write_inductor_candidates(tasks, args.out, args.device, args.jobs)
    print(json.dumps({"written": len(index["written"]), "failed": index["failed"]}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"eval": cmd_eval, "eval-all": cmd_eval_all, "inductor-candidates": cmd_inductor}
    try:
        return commands[args.command](args) if args.command in commands else args.func(args)
    except (TaskError, ValueError) as error:
        print(f"kernel-search: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
