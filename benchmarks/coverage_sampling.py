"""Distinct op pairs covered by uniform vs coverage-guided sampling for the same number of samples.

    python benchmarks/coverage_sampling.py [--samples 1000] [--seed 0] [--accept-rate 0.85] [--lag 64]

Outcomes are simulated (a deterministic per-sample acceptance at the given rate) and committed in index order
`--lag` samples late, the way the pipeline does. For pairs among really accepted programs, run the generator
twice (sampling=uniform / sampling=coverage) and compare `coverage.distinct_op_pairs_accepted` in stats.json.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time
from collections import Counter

from synth_modules.config import GeneratorConfig
from synth_modules.sampling import CoverageSampler, UniformSampler
from synth_modules.types import Sample


def simulate(sampler, samples: int, accept_rate: float, lag: int) -> tuple[list[Sample], list[bool]]:
    drawn: list[Sample] = []
    outcomes: list[bool] = []
    threshold = int(256 * accept_rate)
    for index in range(samples):
        drawn.append(sampler.sample(index))
        outcomes.append(hashlib.sha256(drawn[-1].id.encode()).digest()[0] < threshold)
        done = index - lag
        if done >= 0:
            sampler.observe(drawn[done], outcomes[done], [])
    return drawn, outcomes


def pairs(samples: list[Sample]) -> int:
    found: set[tuple[str, str]] = set()
    for sample in samples:
        found |= set(itertools.combinations(sorted(set(sample.sampled_ops)), 2))
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accept-rate", type=float, default=0.85)
    parser.add_argument("--lag", type=int, default=64)
    args = parser.parse_args()
    config = GeneratorConfig(seed=args.seed)
    print(
        f"{args.samples} samples, seed {args.seed}, simulated acceptance {args.accept_rate}, commit lag {args.lag}"
    )
    print(
        f"{'sampler':10} {'pairs sampled':>14} {'pairs accepted':>15} {'ops used':>9} {'min/max op uses':>16} {'s':>6}"
    )
    for name, sampler in (("uniform", UniformSampler(config)), ("coverage", CoverageSampler(config))):
        started = time.perf_counter()
        drawn, outcomes = simulate(sampler, args.samples, args.accept_rate, args.lag)
        seconds = time.perf_counter() - started
        kept = [s for s, ok in zip(drawn, outcomes, strict=True) if ok]
        uses = Counter(op for s in drawn for op in s.sampled_ops)
        pool = [
            op for kind in ("core", "compound", "supporting") for op in UniformSampler(config).lists[kind]
        ]
        spread = f"{min(uses[op] for op in pool)}/{max(uses[op] for op in pool)}"
        print(f"{name:10} {pairs(drawn):>14} {pairs(kept):>15} {len(uses):>9} {spread:>16} {seconds:>6.2f}")


if __name__ == "__main__":
    main()
