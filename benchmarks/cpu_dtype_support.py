"""Measure which catalog ops run on CPU in bfloat16 / float16, and write the composer's exclusion table.

For every sampleable op, composes programs around it (float32, the composer's adapters included), switches the
program's `dtype` constant and runs it eagerly on CPU (optionally compiled too). An op is excluded for a dtype
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
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import operators
from synth_modules.composer import compose
from synth_modules.composer.dtypes import TABLE_FILE
from synth_modules.program import split_init_inputs
from synth_modules.types import Sample

_DTYPE_ERROR = re.compile(r"BFloat16|Half|bfloat16|float16|dtype|scalar type", re.IGNORECASE)


def _sample(op: operators.OpSpec, index: int) -> Sample:
    lists = {"core": ([op.name], [], []), "compound": (["Linear"], [op.name], [])}
    core, compound, supporting = lists.get(op.kind, (["Linear"], [], [op.name]))
    return Sample(index, f"probe-{index}", 0, core, compound, supporting)


def _run(source: str, entry_point: str, dtype: str, compiled: bool) -> str | None:
    source = source.replace("dtype = torch.float32", f"dtype = torch.{dtype}")
    module = types.ModuleType("probe")
    try:
        exec(compile(source, "probe.py", "exec"), module.__dict__)
        torch.manual_seed(0)
        args, kwargs = split_init_inputs(module.get_init_inputs())
        model = getattr(module, entry_point)(*args, **kwargs).eval()
        inputs = module.get_inputs()
        with torch.no_grad():
            model(*inputs)
            if compiled:
                torch.compile(model)(*inputs)
                torch._dynamo.reset()
    except Exception as exc:  # a probe: every failure is data
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-op", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--write", action="store_true", help=f"write {TABLE_FILE.name}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ops = [*operators.core_ops(), *operators.compound_ops(), *operators.supporting_ops()]
    unsupported: dict[str, list[str]] = {"bfloat16": [], "float16": []}
    messages: dict[str, collections.Counter] = {d: collections.Counter() for d in unsupported}
    index = 0
    for op in ops:
        for dtype in unsupported:
            failures = 0
            tried = 0
            for k in range(args.per_op):
                index += 1
                composed = compose(_sample(op, index), random.Random(f"{op.name}:{k}"))
                if op.name not in composed.final_pattern:
                    continue
                tried += 1
                error = _run(composed.source, composed.entry_point, dtype, args.compile)
                if error and _DTYPE_ERROR.search(error):
                    failures += 1
                    messages[dtype][f"{op.name}: {error}"] += 1
            if tried and failures * 2 > tried:
                unsupported[dtype].append(op.name)
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
