"""The contamination and dedup gates over programs from the built-in composer, without the sandbox.

    python benchmarks/gates_on_composer.py [--samples 1000] [--seed 0] [--sampling uniform|coverage|both]

For each sampling strategy: compose one program per sample (attempt 0), run the gates in index order the way the
pipeline does (check, then admit what is kept), and print how many programs each gate rejects, the KernelBench
problems that were matched, the gates' time per program, and op / op-pair coverage of the kept programs. The
sandbox (the slow part of a real run) is skipped, so "kept" means "kept by the gates", not "validated".
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections import Counter

import operators
from synth_modules.backends.builtin import BuiltinBackend
from synth_modules.config import GeneratorConfig
from synth_modules.gates.base import GateInput
from synth_modules.gates.contamination import ContaminationGate
from synth_modules.gates.dedup import DedupGate
from synth_modules.program import make_entry_point
from synth_modules.sampling import CoverageSampler, UniformSampler
from synth_modules.types import GenerationError, GenerationRequest, Verdict


def run(strategy: str, samples: int, seed: int) -> None:
    config = GeneratorConfig(seed=seed, sampling=strategy)
    sampler = CoverageSampler(config) if strategy == "coverage" else UniformSampler(config)
    backend = BuiltinBackend(config)
    contamination = ContaminationGate({"l1", "l2"}, "reordered")
    dedup = DedupGate(config.dedup_threshold)
    seconds = Counter()
    rejected: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    near_misses = 0
    kept_ops: Counter[str] = Counter()
    kept_pairs: set[tuple[str, str]] = set()
    sampled_pairs: set[tuple[str, str]] = set()
    for index in range(samples):
        sample = sampler.sample(index)
        sampled_pairs |= set(itertools.combinations(sorted(set(sample.sampled_ops)), 2))
        request = GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id))
        started = time.perf_counter()
        try:
            generation = asyncio.run(backend.generate(request))
        except GenerationError:
            rejected["composer"] += 1
            sampler.observe(sample, False, [])
            continue
        seconds["compose"] += time.perf_counter() - started
        item = GateInput(
            sample.id,
            generation.entry_point,
            generation.source,
            generation.final_pattern,
            Verdict(True, "done"),
        )
        keep = True
        for gate in (contamination, dedup):
            started = time.perf_counter()
            decision = gate.check(item)
            seconds[gate.name] += time.perf_counter() - started
            if not decision.keep:
                rejected[gate.name] += 1
                if gate is contamination:
                    matched[decision.details["kernelbench"]] += 1
                keep = False
                break
            if decision.details.get("near_miss"):
                near_misses += 1
        if keep:
            dedup.admit(item)
            kept_ops.update(set(sample.sampled_ops))
            kept_pairs |= set(itertools.combinations(sorted(set(sample.sampled_ops)), 2))
        sampler.observe(sample, keep, generation.final_pattern)
    catalog = [op.name for op in operators.all_ops(include_unsupported=False)]
    kept = samples - sum(rejected.values())
    print(f"\n== sampling={strategy}: {samples} samples, seed {seed}")
    print(f"kept {kept}; rejected {dict(rejected)}; near misses kept {near_misses}")
    print(f"KernelBench problems matched: {dict(matched.most_common(10))}")
    per = {name: f"{1000 * s / samples:.2f} ms" for name, s in seconds.items()}
    print(f"time per program: {per}")
    present = sum(1 for op in catalog if kept_ops[op])
    print(f"catalog ops in kept programs: {present}/{len(catalog)} ({100 * present / len(catalog):.1f}%)")
    print(f"distinct op pairs: sampled {len(sampled_pairs)}, kept {len(kept_pairs)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampling", choices=["uniform", "coverage", "both"], default="both")
    args = parser.parse_args()
    for strategy in ("uniform", "coverage") if args.sampling == "both" else (args.sampling,):
        run(strategy, args.samples, args.seed)


if __name__ == "__main__":
    main()
