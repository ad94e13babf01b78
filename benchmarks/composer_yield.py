"""Yield of the built-in composer: compose N samples (UniformSampler + BuiltinBackend) and validate every program
in the real sandbox (static checks, eager twice, torch.compile/Inductor, compare, shape and degenerate checks).

Prints the yield, failures by category and by op, and which sampleable ops never appeared in a valid program.

    .venv/bin/python benchmarks/composer_yield.py --samples 300 --workers 2
    .venv/bin/python benchmarks/composer_yield.py --samples 300 --show-failures 5 --dump-dir /tmp/failed
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import operators
from synth_modules.backends.builtin import BuiltinBackend
from synth_modules.config import GeneratorConfig
from synth_modules.program import make_entry_point
from synth_modules.sampling import UniformSampler
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.types import Generation, GenerationRequest


def compose_all(
    config: GeneratorConfig, count: int, start: int, attempt: int
) -> list[tuple[int, Generation]]:
    sampler, backend = UniformSampler(config), BuiltinBackend(config)
    out = []
    for index in range(start, start + count):
        sample = sampler.sample(index)
        request = GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id), attempt=attempt)
        out.append((index, asyncio.run(backend.generate(request))))
    return out


def _dump(out: Path, index: int, gen: Generation, verdict) -> None:
    """Write a failing program with its verdict on the first line (as soon as it fails)."""
    out.mkdir(parents=True, exist_ok=True)
    text = f"# {verdict.category} {verdict.stage}: {verdict.message[:500]!r}\n" + gen.source
    (out / f"{index:05d}_{gen.entry_point}.py").write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--start", type=int, default=0, help="first sample index")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--attempt", type=int, default=0, help="composer attempt number (repair stream)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--core", default="1,2", help="num_core_ops_range")
    parser.add_argument("--compound", default="0,1", help="num_compound_ops_range")
    parser.add_argument("--supporting", default="1,5", help="num_supporting_ops_range")
    parser.add_argument("--p-value", type=float, default=0.5)
    parser.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 | mixed")
    parser.add_argument("--show-failures", type=int, default=3, help="print the first N failing messages")
    parser.add_argument("--dump-dir", default=None, help="write failing programs here")
    parser.add_argument("--json", default=None, help="write the numbers as JSON here")
    parser.add_argument("--progress", type=int, default=25, help="print progress every N verdicts")
    args = parser.parse_args()

    def bounds(text: str) -> list[int]:
        return [int(v) for v in text.split(",")]

    config = GeneratorConfig(
        seed=args.seed,
        num_core_ops_range=bounds(args.core),
        num_compound_ops_range=bounds(args.compound),
        num_supporting_ops_range=bounds(args.supporting),
        p_value=args.p_value,
        dtype=args.dtype,
    )
    t0 = time.perf_counter()
    generations = compose_all(config, args.samples, args.start, args.attempt)
    compose_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    with SandboxPool(args.workers, SandboxOptions(timeout_s=args.timeout)) as pool:
        futures = [
            pool.submit(
                ValidationJob(
                    id=str(index),
                    source=gen.source,
                    entry_point=gen.entry_point,
                    expected_output_shapes=gen.expected_output_shapes,
                )
            )
            for index, gen in generations
        ]
        verdicts = []
        for done, future in enumerate(futures, 1):
            verdicts.append(future.result())
            if not verdicts[-1].ok and args.dump_dir:
                index, gen = generations[done - 1]
                _dump(Path(args.dump_dir), index, gen, verdicts[-1])
            if done % args.progress == 0 or done == len(futures):
                ok = sum(v.ok for v in verdicts)
                took = time.perf_counter() - t1
                print(f"  {done}/{len(futures)} validated, {ok} valid, {took:.0f} s", flush=True)
    validate_s = time.perf_counter() - t1

    ok_ops: collections.Counter[str] = collections.Counter()
    bad_ops: collections.Counter[str] = collections.Counter()
    categories: collections.Counter[str] = collections.Counter()
    failures = []
    for (index, gen), verdict in zip(generations, verdicts, strict=True):
        ops = set(gen.final_pattern)
        if verdict.ok:
            ok_ops.update(ops)
        else:
            bad_ops.update(ops)
            categories[str(verdict.category)] += 1
            failures.append((index, gen, verdict))
    valid = sum(v.ok for v in verdicts)
    total = len(verdicts)
    sampleable = {op.name for op in operators.all_ops(include_unsupported=False)}
    never = sorted(sampleable - set(ok_ops))

    print(
        f"composed {total} programs in {compose_s * 1000:.0f} ms ({compose_s * 1000 / max(total, 1):.1f} ms each)"
    )
    print(f"validated in {validate_s:.0f} s with {args.workers} workers ({total / validate_s * 60:.0f}/min)")
    seconds = sorted(v.seconds for v in verdicts)
    print(
        f"per program: median {seconds[len(seconds) // 2]:.1f} s, max {seconds[-1]:.1f} s (sandbox wall time)"
    )
    print(f"valid: {valid}/{total} = {100 * valid / max(total, 1):.1f}%")
    print("failures by category:", dict(categories.most_common()))
    rates = sorted(
        ((op, bad_ops[op], bad_ops[op] + ok_ops[op]) for op in bad_ops), key=lambda t: (-t[1] / t[2], -t[1])
    )
    print("failing ops (failed/appeared):", ", ".join(f"{op} {b}/{n}" for op, b, n in rates[:25]))
    print(f"sampleable ops in a valid program: {len(sampleable) - len(never)}/{len(sampleable)}")
    if never:
        print("never in a valid program:", ", ".join(never))
    for index, gen, verdict in failures[: args.show_failures]:
        print(
            f"--- sample {index} {gen.final_pattern}: {verdict.category} at {verdict.stage}: {verdict.message[:300]}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "samples": total,
                    "valid": valid,
                    "yield": valid / max(total, 1),
                    "categories": dict(categories),
                    "failing_ops": {op: [b, n] for op, b, n in rates},
                    "never_valid": never,
                    "compose_ms_each": compose_s * 1000 / max(total, 1),
                    "validate_s": validate_s,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
