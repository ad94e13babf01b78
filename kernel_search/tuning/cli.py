"""`kernel-search tune` and `kernel-search tune-pairs`: the config search from the command line.

    kernel-search tune TASKS... --space inductor --strategy random,ga --max-evals 40 --out RUN_DIR
    kernel-search tune-pairs PAIRS_DIR --out DIR --strategy ga --max-evals 24

TASKS are task files or folders (export-seeds output, KernelBench layouts). Several strategies run one after
another on every task, sharing measurements (identical candidates are measured once). Repeating a command
resumes its run directory. `register(subparsers)` adds both commands to kernel_search/cli.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kernel_search.strategies import STRATEGIES
from kernel_search.tuning.settings import PROFILES

SPACES = ("inductor", "inductor-small", "triton-launch", "helion")


def _strategies(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown strategy {', '.join(unknown) or text!r}; valid: {', '.join(STRATEGIES)}"
        )
    return names


def _option(text: str) -> tuple[str, str, Any]:
    """`STRATEGY.FIELD=VALUE` (VALUE read as JSON when it parses, else as a string)."""
    try:
        left, raw = text.split("=", 1)
        strategy, name = left.split(".", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--set takes STRATEGY.FIELD=VALUE, got {text!r}") from None
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return strategy, name, value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy", type=_strategies, default=["random"], help=f"comma list of {', '.join(STRATEGIES)}"
    )
    parser.add_argument("--max-evals", type=int, default=None, help="evaluations per task and strategy")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="wall-clock seconds per task and strategy"
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="default budgets")
    parser.add_argument("--out", required=True, help="run directory (repeat the command to resume)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jobs", type=int, default=1, help="candidates evaluated at once (timing stays serial)"
    )
    parser.add_argument(
        "--parallel-tasks",
        type=int,
        default=None,
        help="tasks tuned at once (each with --jobs; default one per GPU)",
    )
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument(
        "--set",
        dest="options",
        type=_option,
        action="append",
        default=[],
        help="strategy option, e.g. ga.population_size=16 or llm.model_name=gpt-4.1-mini",
    )
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per candidate evaluation")
    parser.add_argument("--timing-budget-s", type=float, default=1.0, help="timing time per candidate")
    parser.add_argument("--cache-dir", default=None, help="evaluator baseline cache and device locks")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for evaluation workers")
    parser.add_argument("--no-progress", action="store_true")
    from kernel_search import placement

    placement.add_arguments(parser)  # --gpus, --executor ray, --ray-address


def register(sub: Any) -> None:
    tune = sub.add_parser("tune", help="search a config space for each task (run directory + database)")
    tune.add_argument("tasks", nargs="+", help="task files or folders")
    tune.add_argument("--space", choices=[s for s in SPACES if s != "triton-launch"], default="inductor")
    tune.add_argument(
        "--batch-scale", type=int, default=1, help="repeat every input this many times along dim 0"
    )
    _common(tune)
    tune.set_defaults(func=cmd_tune)
    pairs = sub.add_parser("tune-pairs", help="tune each exported pair's Triton launch configs")
    pairs.add_argument("pairs_dir", help="an export-pairs folder (pairs.jsonl)")
    pairs.add_argument("--limit", type=int, default=None, help="first N pairs only")
    _common(pairs)
    pairs.set_defaults(func=cmd_tune_pairs, space="triton-launch")


def _request(args: argparse.Namespace) -> Any:
    from kernel_search.tuning.runs import TuneRequest

    profile = PROFILES[args.profile]
    options: dict[str, dict[str, Any]] = {}
    for strategy, name, value in args.options:
        if strategy not in STRATEGIES:
            raise ValueError(f"--set names unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
        options.setdefault(strategy, {})[name] = value
    for strategy in args.strategy:  # enough configs per batch to keep --jobs workers busy
        if strategy in {"random", "mcts", "llm"} and "batch_size" not in options.get(strategy, {}):
            options.setdefault(strategy, {})["batch_size"] = max(4, args.jobs)
    request = TuneRequest(
        space=args.space,
        strategies=args.strategy,
        max_evaluations=args.max_evals or profile.max_evaluations,
        budget_s=args.budget_s if args.budget_s is not None else profile.budget_s,
        seed=args.seed,
        jobs=max(1, args.jobs),
        parallel_targets=max(1, args.parallel_tasks or 1),
        strategy_options=options,
        extra={"device": args.device, "timing_budget_s": args.timing_budget_s, "argv": sys.argv[1:]},
    )
    from kernel_search.tuning.settings import build_settings

    for strategy in request.strategies:  # unknown option names: one error before any work
        build_settings(strategy, options.get(strategy))
    if request.max_evaluations < 1:
        raise ValueError("--max-evals must be >= 1")
    return request


def _evaluator(args: argparse.Namespace, request: Any) -> Any:
    from kernel_search.evaluator import EvalOptions, TimingSettings
    from kernel_search.evaluator.baselines import COMPILE

    env = dict(item.split("=", 1) for item in args.env)
    options = EvalOptions(
        timeout_s=args.timeout_s,
        baseline_timeout_s=max(args.timeout_s, 120.0),
        baselines=(COMPILE,),  # the score is the speedup over the better of eager and compile-default
        cache_dir=args.cache_dir,
        seed=args.seed,
        timing=TimingSettings(min_reps=30, budget_s=args.timing_budget_s),
        extra_env=env,
    )
    from kernel_search import placement

    evaluator = placement.build_evaluator(args, options)
    if args.parallel_tasks is None:  # one task tuned per slot at once: all GPUs busy, results unchanged
        request.parallel_targets = placement.slot_count(evaluator)
    request.extra.update(gpus=args.gpus, executor=args.executor, slots=placement.slot_count(evaluator))
    return evaluator


def _progress(args: argparse.Namespace, total: int) -> Any:
    if args.no_progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="eval", dynamic_ncols=True)


def cmd_tune(args: argparse.Namespace) -> int:
    from kernel_search.spaces import make_task_space
    from kernel_search.tasks import load_task, load_tasks
    from kernel_search.tasks.scaling import write_scaled
    from kernel_search.tuning.runs import Target

    request = _request(args)
    tasks = [task for path in args.tasks for task in load_tasks(path)]
    if args.batch_scale != 1:
        folder = Path(args.out) / "tasks"
        tasks = [
            load_task(
                write_scaled(t.source, t.name, args.batch_scale, folder), name=f"{t.name}@x{args.batch_scale}"
            )
            for t in tasks
        ]
    request.extra.update(batch_scale=args.batch_scale, tasks=[t.name for t in tasks])
    evaluator = _evaluator(args, request)
    device = "cpu" if args.device == "cpu" else "cuda"
    targets = [
        Target(
            name=task.name,
            make_space=lambda task=task: make_task_space(args.space, task.source, device),
            make_evaluate=lambda task=task: (
                lambda source, name: evaluator.evaluate(task, source, name).to_dict()
            ),
        )
        for task in tasks
    ]
    _print_best(_run(targets, request, args, evaluator), args.out)
    return 0


def _run(targets: list[Any], request: Any, args: argparse.Namespace, evaluator: Any) -> dict[str, Any]:
    """Every target times every strategy, with a progress bar; the evaluator is closed whatever happens."""
    from kernel_search.tuning.runs import run_targets

    progress = _progress(args, len(targets) * len(request.strategies) * request.max_evaluations)
    try:
        return run_targets(targets, request, args.out, progress)
    finally:
        evaluator.close()
        if progress is not None:
            progress.close()


def cmd_tune_pairs(args: argparse.Namespace) -> int:
    from kernel_search.tuning.pair_targets import pair_targets

    request = _request(args)
    evaluator = _evaluator(args, request)
    targets = pair_targets(Path(args.pairs_dir), Path(args.out), evaluator, limit=args.limit)
    request.extra.update(pairs_dir=str(args.pairs_dir), pairs=[t.name for t in targets])
    best = _run(targets, request, args, evaluator)
    from kernel_search.tuning.pair_targets import write_tuned_pairs

    written = write_tuned_pairs(Path(args.pairs_dir), Path(args.out), best)
    print(f"tuned pairs: {written}")
    _print_best(best, args.out)
    return 0


def _print_best(best: dict[str, Any], out: str) -> None:
    for task, run in sorted(best.get("tasks", {}).items()):
        print(f"{task}: {run['best_score']:.3f}x with {run['strategy']} ({json.dumps(run['best_config'])})")
    print(f"run directory: {out} (results/summary.md, kernel_search.duckdb)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kernel-search")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        print(f"kernel-search: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
