"""Where `eval-all` and `tune` evaluate: `--gpus` slots on this host, or one Ray actor per GPU (`--executor ray`).

    add_arguments(parser)                     # --gpus, --executor, --ray-address
    evaluator = build_evaluator(args, options)  # Evaluator (local slots) or RayEvaluator
    jobs = default_jobs(args, evaluator)        # --jobs, else one evaluation in flight per slot

Both evaluators answer `evaluate(task, source, name) -> EvalResult`, so the commands do not change with them.
"""

from __future__ import annotations

import argparse
from typing import Any

from kernel_search.placement.devices import resolve_slots

EXECUTORS = ("local", "ray")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gpus",
        default=None,
        help="GPUs to spread over: all (default), a count (2) or indices (0,1); with --device cpu, N CPU slots",
    )
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="local (default) or ray")
    parser.add_argument(
        "--ray-address", default=None, help="with --executor ray: auto, host:port, ray://...; default local"
    )


def slot_count(evaluator: Any) -> int:
    return getattr(evaluator, "slot_count", None) or len(evaluator.slots)


def check_arguments(args: argparse.Namespace) -> None:
    """One clear error (ValueError) for bad --device / --gpus / --executor, before any work is started."""
    gpus = getattr(args, "gpus", None)
    if getattr(args, "executor", "local") == "ray":
        from synth_modules.executors.ray_cluster import import_ray

        import_ray()  # missing Ray: the install hint
        if gpus not in (None, "all") and not gpus.isdigit():
            raise ValueError("--executor ray takes --gpus all or a count (the cluster decides which GPUs)")
    elif getattr(args, "ray_address", None):
        raise ValueError("--ray-address needs --executor ray")
    else:
        resolve_slots(args.device, gpus)


def build_evaluator(args: argparse.Namespace, options: Any) -> Any:
    """The evaluator `args` ask for (`check_arguments` first: bad arguments are a ValueError)."""
    check_arguments(args)
    gpus = getattr(args, "gpus", None)
    if getattr(args, "executor", "local") == "ray":
        from kernel_search.placement.ray_evaluator import RayEvaluator

        count = int(gpus) if gpus and gpus.isdigit() else None
        jobs = getattr(args, "jobs", None)
        per_actor = max(1, -(-jobs // count)) if jobs and count else 1
        return RayEvaluator(args.device, options, count, address=args.ray_address, per_actor=per_actor)
    from kernel_search.evaluator import Evaluator

    slots = resolve_slots(args.device, gpus)
    return Evaluator("cpu" if args.device == "cpu" else "cuda", options, slots=slots)


def default_jobs(args: argparse.Namespace, evaluator: Any) -> int:
    """--jobs when given, else one evaluation in flight per slot (one GPU: the old default of 1)."""
    jobs = getattr(args, "jobs", None)
    return max(1, jobs) if jobs else slot_count(evaluator)
