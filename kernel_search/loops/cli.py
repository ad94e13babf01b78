"""`kernel-search refine | beam | priority | evolve | loops`: the optimization loops from the command line.

    kernel-search refine TASKS [--task_idx N] [--model M] [--max_attempts 10] [--num_correct_trials 5]
                               [--num_perf_trials 100] [--verbose] [--save_results] [--out DIR]
    kernel-search beam TASKS --beam 3 --rounds 3 [--dry-run]
    kernel-search priority TASKS | evolve TASKS --islands 2 --generations 4
    kernel-search loops TASKS --loops refine,beam,priority,evolve --out DIR     # all of them, one run directory

Without --model the offline proposer edits Inductor's own Triton code (no key, no network); with one, the same
loop calls that LLM through the project's backends. Bad arguments are one clear error (exit 2) before any work.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings
from kernel_search.loops import LOOPS, LoopBudget
from kernel_search.loops.metrics import aggregate
from kernel_search.loops.offline import OfflineProposer
from kernel_search.loops.proposal import Proposer
from kernel_search.loops.runner import LoopRequest, run_loops
from kernel_search.loops.scoring import Scorer
from kernel_search.loops.seed_pairs import capture_pairs, launch_space_factory, pairs_from_rows
from kernel_search.tasks import Task, TaskError, load_tasks

LOOP_COMMANDS = ("refine", "beam", "priority", "evolve", "loops")


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tasks", help="a task file, an export-seeds folder or a KernelBench level folder")
    parser.add_argument("--task_idx", type=int, default=None, help="only the N-th task (1-based, in order)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    parser.add_argument(
        "--model", default=None, help="an LLM model name (docs/backends.md); default: offline"
    )
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--api-style", default="chat", choices=["chat", "completions"])
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=8192)
    parser.add_argument("--max_attempts", type=int, default=10, help="evaluations per task and loop")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall time per task and loop")
    parser.add_argument(
        "--target_speedup", type=float, default=None, help="stop a task at this speedup vs eager"
    )
    parser.add_argument("--num_correct_trials", type=int, default=5, help="fresh input sets (>= 3)")
    parser.add_argument("--num_perf_trials", type=int, default=100, help="timed repetitions (>= 30)")
    parser.add_argument("--verbose", action="store_true", help="log every attempt")
    parser.add_argument("--save_results", action="store_true", help="write a run directory (see --out)")
    parser.add_argument("--out", default=None, help="run directory (implies --save_results)")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per candidate evaluation")
    parser.add_argument(
        "--baselines", default="compile", help="compiled baselines (compile,max-autotune) or none"
    )
    parser.add_argument("--budget-s", type=float, default=1.0, help="timing budget per callable")
    parser.add_argument("--cache-dir", default=None, help="the evaluator's baseline cache and locks")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the evaluator's worker")
    parser.add_argument(
        "--pairs", default=None, help="export-pairs pairs.jsonl to start from (else captured)"
    )
    parser.add_argument("--capture-jobs", type=int, default=4, help="parallel Inductor captures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="(loop, task) runs at once (timing stays serial)")


def register(sub: Any) -> None:
    """Register the loop subcommands on kernel-search's parser."""
    refine = sub.add_parser("refine", help="sequential refinement with the evaluator's feedback")
    add_common(refine)
    beam = sub.add_parser("beam", help="beam search: idea call, implementation call, evaluation")
    add_common(beam)
    _beam_options(beam)
    priority = sub.add_parser("priority", help="priority search over attempts ordered by score")
    add_common(priority)
    _priority_options(priority)
    evolve = sub.add_parser("evolve", help="evolution over code: islands, MAP-Elites, cascade evaluation")
    add_common(evolve)
    _evolve_options(evolve)
    every = sub.add_parser("loops", help="several loops over the same tasks into one run directory")
    add_common(every)
    every.add_argument("--loops", default=",".join(LOOPS), help=f"comma-separated, from {', '.join(LOOPS)}")
    _beam_options(every)
    _priority_options(every)
    _evolve_options(every)
    for parser in (refine, beam, priority, evolve, every):
        parser.set_defaults(func=cmd_loops)


def _beam_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ideas", type=int, default=2, help="ideas per beam member and round")
    parser.add_argument(
        "--dry-run", action="store_true", help="propose and evaluate one candidate, then stop"
    )


def _priority_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--initial", type=int, default=2)
    parser.add_argument("--children", type=int, default=2)


def _evolve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--islands", type=int, default=2)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--migration-interval", type=int, default=2)
    parser.add_argument(
        "--no-cascade", action="store_true", help="time every candidate (no cheap first stage)"
    )


def loop_settings(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, Any]]:
    known: dict[str, dict[str, Any]] = {"refine": {}}
    if hasattr(args, "beam"):
        known["beam"] = {"beam": args.beam, "rounds": args.rounds, "ideas_per_member": args.ideas,
                         "dry_run": args.dry_run}  # fmt: skip
    if hasattr(args, "initial"):
        known["priority"] = {"initial": args.initial, "children": args.children}
    if hasattr(args, "islands"):
        known["evolve"] = {"islands": args.islands, "generations": args.generations,
                           "migration_interval": args.migration_interval, "cascade": not args.no_cascade}  # fmt: skip
    return {name: known.get(name, {}) for name in names}


def select_tasks(args: argparse.Namespace) -> list[Task]:
    tasks = load_tasks(args.tasks)
    if args.task_idx is not None:
        if not 1 <= args.task_idx <= len(tasks):
            raise TaskError(
                f"--task_idx {args.task_idx} is out of range: {args.tasks} holds {len(tasks)} tasks"
            )
        tasks = [tasks[args.task_idx - 1]]
    return tasks[: args.limit] if args.limit else tasks


def evaluator_options(args: argparse.Namespace, offline_cpu: bool) -> EvalOptions:
    env = dict(item.split("=", 1) for item in args.env)
    if offline_cpu:
        env.setdefault("TRITON_INTERPRET", "1")  # Inductor's Triton code on CPU runs in Triton's interpreter
    baselines = () if args.baselines == "none" else tuple(b for b in args.baselines.split(",") if b)
    return EvalOptions(
        timeout_s=args.timeout_s,
        baseline_timeout_s=max(60.0, args.timeout_s),
        correctness_sets=max(3, args.num_correct_trials),
        timing=TimingSettings(min_reps=max(30, args.num_perf_trials), budget_s=args.budget_s),
        baselines=baselines,
        cache_dir=args.cache_dir,
        seed=args.seed,
        extra_env=env,
    )


def offline_pairs(args: argparse.Namespace, tasks: list[Task], out: Path) -> dict[str, Any]:
    """Each task's starting pair: rows of --pairs, else captured on CUDA."""
    if args.pairs:
        return pairs_from_rows(args.pairs, tasks, cpu=args.device == "cpu")
    if args.device == "cpu":
        return {t.name: "Inductor writes Triton only for CUDA: pass --pairs for CPU runs" for t in tasks}
    return capture_pairs(tasks, out / "pairs", args.device, args.capture_jobs)


def cmd_loops(args: argparse.Namespace) -> int:
    names = (
        [n for n in getattr(args, "loops", args.command).split(",") if n]
        if args.command == "loops"
        else [args.command]
    )
    budget = LoopBudget(args.max_attempts, args.max_seconds, args.target_speedup)
    tasks = select_tasks(args)
    save = args.save_results or args.out is not None
    out = Path(args.out or f"kernel_search_runs/{args.command}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not save:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="kernel-search-loops-"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    offline = args.model is None
    if offline:
        pairs = offline_pairs(args, tasks, out)
        for task, pair in pairs.items():
            if not isinstance(pair, dict):
                print(f"kernel-search: {task}: no offline starting point ({pair})", file=sys.stderr)

        def make_proposer() -> Proposer:
            return OfflineProposer(launch_space_factory(pairs), seed=args.seed)
    else:
        from kernel_search.loops.llm_proposer import build_llm_proposer

        build_llm_proposer(
            args.model, cache_dir=str(out / ".cache"), base_url=args.base_url
        )  # key check first

        def make_proposer() -> Proposer:
            return build_llm_proposer(
                args.model, cache_dir=str(out / ".cache"), base_url=args.base_url, api_style=args.api_style,
                temperature=args.temperature, max_tokens=args.max_tokens, device=args.device,
                target_speedup=args.target_speedup or 1.0,
            )  # fmt: skip

    options = evaluator_options(args, offline and args.device == "cpu")
    request = LoopRequest(
        names, budget, loop_settings(args, names), args.seed, f"kernel-search {args.command}", jobs=args.jobs
    )
    by_loop = run_loops(
        tasks,
        request,
        out,
        make_proposer,
        lambda db: Scorer(Evaluator(args.device, options), db),
        metadata={"model": args.model or "offline", "device": args.device},
    )
    for name, trajectories in by_loop.items():
        print(json.dumps({"loop": name, **aggregate(trajectories)}))
    if save:
        print(f"wrote {out}/results/summary.md")
    return 0
