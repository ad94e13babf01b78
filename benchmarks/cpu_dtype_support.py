"""Measure which catalog ops run on CPU in bfloat16 / float16, and write the composer's exclusion table.

For every sampleable op, composes programs around it (float32, the composer's adapters included), switches the
program's `dtype` constant and runs it in the validation sandbox on CPU: the sandbox's probe (construct and one
eager forward), or with `--compile` the full validation (eager, torch.compile, compare). An op is excluded for a dtype
when most of its programs fail with an error that names the dtype (a missing kernel: "not implemented for
'BFloat16'" or a dtype mismatch), which is what `synth_modules/composer/cpu_dtype_support.json` records.

    .venv/bin/python benchmarks/cpu_dtype_support.py --per-op 3 [--compile] [--write]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
from concurrent.futures import Future
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import operators
from synth_modules.composer import compose
from synth_modules.composer.dtypes import TABLE_FILE
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.types import Sample, Verdict

_DTYPE_ERROR = re.compile(r"BFloat16|Half|bfloat16|float16|dtype|scalar type", re.IGNORECASE)


def _sample(op: operators.OpSpec, index: int) -> Sample:
    lists = {"core": ([op.name], [], []), "compound": (["Linear"], [op.name], [])}
    core, compound, supporting = lists.get(op.kind, (["Linear"], [], [op.name]))
    return Sample(index, f"probe-{index}", 0, core, compound, supporting)


def _job(source: str, entry_point: str, dtype: str, index: int) -> ValidationJob:
    source = source.replace("dtype = torch.float32", f"dtype = torch.{dtype}")
    return ValidationJob(id=f"probe-{index}-{dtype}", source=source, entry_point=entry_point)


def _error(verdict: Verdict) -> str | None:
    """The failure the sandbox reported (None when the program ran): exception type and first line."""
    if verdict.ok:
        return None
    kind = verdict.checks.get("exception_type") or verdict.category
    text = verdict.checks.get("exception_message") or verdict.message
    return f"{kind}: {text}".splitlines()[0][:200]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-op", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="full validation (compile too), not the probe")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help=f"write {TABLE_FILE.name}")
    args = parser.parse_args()
    ops = [*operators.core_ops(), *operators.compound_ops(), *operators.supporting_ops()]
    unsupported: dict[str, list[str]] = {"bfloat16": [], "float16": []}
    messages: dict[str, collections.Counter] = {d: collections.Counter() for d in unsupported}
    probes: list[tuple[str, str, Future[Verdict]]] = []  # (op, dtype, verdict): every program runs sandboxed
    index = 0
    with SandboxPool(args.workers, SandboxOptions(compile=args.compile)) as pool:
        run = pool.submit if args.compile else pool.probe
        for op in ops:
            for dtype in unsupported:
                for k in range(args.per_op):
                    index += 1
                    composed = compose(_sample(op, index), random.Random(f"{op.name}:{k}"))
                    if op.name in composed.final_pattern:
                        job = _job(composed.source, composed.entry_point, dtype, index)
                        probes.append((op.name, dtype, run(job)))
        tried: collections.Counter = collections.Counter()
        failed: collections.Counter = collections.Counter()
        for name, dtype, future in probes:
            tried[name, dtype] += 1
            error = _error(future.result())
            if error and _DTYPE_ERROR.search(error):
                failed[name, dtype] += 1
                messages[dtype][f"{name}: {error}"] += 1
    for (name, dtype), count in tried.items():
        if failed[name, dtype] * 2 > count:
            unsupported[dtype].append(name)
    for dtype, names in unsupported.items():
        print(f"{dtype}: {len(names)} of {len(ops)} ops excluded: {', '.join(names) or '-'}")
        for text, count in messages[dtype].most_common(40):
            print(f"   {count}x {text}")
    if args.write:
        table = {
            "torch": torch.__version__,
            "method": f"benchmarks/cpu_dtype_support.py --per-op {args.per_op}" + " --compile" * args.compile,
            "unsupported": unsupported,
        }
        TABLE_FILE.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
