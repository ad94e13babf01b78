"""`kernel-search run | discover | demo`: the research pipeline from the command line.

kernel-search run --domain "LLM inference" --operation softmax|gemm|attention|seeds [--tasks DIR]
                  --max-ideas 3 --max-evals 12 [--model M] --out DIR
kernel-search discover --domain ... --operation ...      # literature only (EXA_API_KEY; skipped without)
kernel-search demo [--device cpu|cuda] [--out DIR]       # offline: no key, no network
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings
from kernel_search.research import literature
from kernel_search.research.pipeline import OPERATIONS, ResearchRequest, demo_pairs, run_research


def _evaluator_args(parser: argparse.ArgumentParser, device: str = "cuda") -> None:
    parser.add_argument("--device", default=device, help="cuda, cuda:N or cpu")
    parser.add_argument(
        "--baselines", default="compile", help="compiled baselines (compile,max-autotune) or none"
    )
    parser.add_argument("--budget-s", type=float, default=1.0, help="timing budget per callable")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--cache-dir", default=None, help="the evaluator's baseline cache and locks")
    parser.add_argument("--seed", type=int, default=0)


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="research pipeline: literature, ideas, config search, experiments, summary"
    )
    run.add_argument("--domain", required=True)
    run.add_argument("--operation", required=True, choices=OPERATIONS)
    run.add_argument("--tasks", default=None, help="seed tasks for --operation seeds")
    run.add_argument("--max-ideas", type=int, default=3)
    run.add_argument("--max-evals", type=int, default=12, help="config-search evaluations over all tasks")
    run.add_argument("--model", default=None, help="an LLM for ideas and novelty (default: offline catalog)")
    run.add_argument("--base-url", default=None)
    run.add_argument("--pairs", default=None, help="export-pairs pairs.jsonl instead of capturing (CPU runs)")
    run.add_argument("--out", default=None)
    _evaluator_args(run)
    run.set_defaults(func=cmd_run)
    discover = sub.add_parser("discover", help="literature discovery through Exa (EXA_API_KEY)")
    discover.add_argument("--domain", required=True)
    discover.add_argument("--operation", default="seeds", choices=OPERATIONS)
    discover.add_argument("--num-results", type=int, default=8)
    discover.add_argument("--out", default=None, help="write DIR/literature/literature_summary.json")
    discover.set_defaults(func=cmd_discover)
    demo = sub.add_parser("demo", help="the research pipeline offline, end to end (no key, no network)")
    demo.add_argument("--out", default=None)
    demo.add_argument("--max-evals", type=int, default=4)
    _evaluator_args(demo, device="cuda")
    demo.set_defaults(func=cmd_demo)


def _evaluator(args: argparse.Namespace, interpret: bool) -> Evaluator:
    baselines = () if args.baselines == "none" else tuple(b for b in args.baselines.split(",") if b)
    options = EvalOptions(
        timeout_s=args.timeout_s,
        baseline_timeout_s=max(60.0, args.timeout_s),
        baselines=baselines,
        timing=TimingSettings(budget_s=args.budget_s),
        cache_dir=args.cache_dir,
        seed=args.seed,
        extra_env={"TRITON_INTERPRET": "1"} if interpret else {},
    )
    return Evaluator(args.device, options)


def _out(args: argparse.Namespace, name: str) -> Path:
    return Path(args.out or f"kernel_search_runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _print_result(result: dict[str, Any], out: Path) -> None:
    print(json.dumps({"idea": result["idea"]["title"], "strategy": result["idea"]["strategy"],
                      "tuned_vs_inductor": {r["task"]: r.get("tuned_vs_inductor") for r in result["experiments"]}}))  # fmt: skip
    print(f"wrote {out}/results/summary.md")


def cmd_run(args: argparse.Namespace) -> int:
    request = ResearchRequest(args.domain, args.operation, args.max_ideas, args.max_evals, args.model,
                              args.device, args.tasks, args.seed)  # fmt: skip
    request.check()
    out = _out(args, "research")
    caller = None
    if args.model:
        from kernel_search.loops.llm_calls import LLMCaller
        from kernel_search.loops.llm_proposer import build_llm_proposer

        caller = LLMCaller(
            build_llm_proposer(args.model, cache_dir=str(out / ".cache"), base_url=args.base_url).backend
        )
    pairs = None
    if args.pairs:
        from kernel_search.loops.seed_pairs import pairs_from_rows
        from kernel_search.tasks import load_tasks

        tasks = load_tasks(args.tasks) if args.tasks else []
        pairs = pairs_from_rows(args.pairs, tasks, cpu=args.device == "cpu")
    try:
        result = run_research(request, out, _evaluator(args, args.device == "cpu"), pairs, caller)
    finally:
        if caller is not None:
            caller.close()
    _print_result(result, out)
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    found = literature.discover(args.domain, args.operation, args.num_results)
    if args.out:
        from kernel_search.store.rundir import write_json

        write_json(Path(args.out) / "literature" / "literature_summary.json", found)
    if found["skipped"]:
        print(f"kernel-search discover: {found['reason']}")
    else:
        for paper in found["papers"]:
            print(f"- {paper['title']} ({paper['url']})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    out = _out(args, "demo")
    cpu = args.device == "cpu"
    if cpu:
        tasks, pairs = demo_pairs(out, cpu=True)
        request = ResearchRequest("demo", "seeds", 3, args.max_evals, device="cpu", tasks=tasks[0].path,
                                  seed=args.seed, literature=False)  # fmt: skip
    else:
        pairs = None
        request = ResearchRequest("demo", "softmax", 3, args.max_evals, device=args.device, seed=args.seed,
                                  literature=False)  # fmt: skip
    result = run_research(request, out, _evaluator(args, cpu), pairs)
    _print_result(result, out)
    return 0
