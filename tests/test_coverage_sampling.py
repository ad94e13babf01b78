"""Coverage-guided sampling: more distinct op pairs than uniform sampling for the same sample count, the same
popcorn op counts, and samples that depend only on the seed and earlier outcomes (not on timing or resumes)."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter

import pytest

from synth_modules.config import GeneratorConfig
from synth_modules.sampling import CoverageSampler, UniformSampler
from synth_modules.types import Sample

N = 1000


def accepted(sample: Sample) -> bool:
    """A stand-in for the pipeline's verdict: deterministic, ~85% accepted, and never for one hopeless pair."""
    if {"GRU", "cumsum"} <= set(sample.sampled_ops):
        return False
    return hashlib.sha256(sample.id.encode()).digest()[0] < 218


def run(sampler, n: int = N, delay: int = 0) -> list[Sample]:
    """Drive a sampler like the pipeline: sample i, commit outcomes in index order `delay` samples later."""
    samples = []
    for index in range(n):
        samples.append(sampler.sample(index))
        done = index - delay
        if done >= 0:
            sampler.observe(samples[done], accepted(samples[done]), [])
    return samples


def distinct_pairs(samples: list[Sample]) -> int:
    pairs: set[tuple[str, str]] = set()
    for sample in samples:
        pairs |= set(itertools.combinations(sorted(set(sample.sampled_ops)), 2))
    return len(pairs)


@pytest.fixture(scope="module")
def config() -> GeneratorConfig:
    return GeneratorConfig(seed=5, sampling="coverage")


@pytest.fixture(scope="module")
def both(config: GeneratorConfig) -> tuple[list[Sample], list[Sample]]:
    return run(UniformSampler(config)), run(CoverageSampler(config), delay=8)


def test_coverage_covers_more_op_pairs_than_uniform(both):
    uniform, coverage = both
    assert distinct_pairs(coverage) > 1.15 * distinct_pairs(uniform)
    kept_uniform = [s for s in uniform if accepted(s)]
    kept_coverage = [s for s in coverage if accepted(s)]
    assert distinct_pairs(kept_coverage) > 1.15 * distinct_pairs(kept_uniform)


def test_coverage_spreads_ops_more_evenly(both, config: GeneratorConfig):
    uniform, coverage = both
    pool = UniformSampler(config).lists["supporting"]

    def counts(samples: list[Sample]) -> list[int]:
        used = Counter(op for s in samples for op in s.supporting_ops)
        return [used[op] for op in pool]

    assert min(counts(coverage)) > min(counts(uniform))
    assert max(counts(coverage)) < max(counts(uniform))


def test_op_counts_are_the_uniform_samplers(both):
    uniform, coverage = both
    for u, c in zip(uniform, coverage, strict=True):
        assert (u.id, u.index, u.seed) == (c.id, c.index, c.seed)
        assert (len(u.core_ops), len(u.compound_ops), len(u.supporting_ops)) == (
            len(c.core_ops),
            len(c.compound_ops),
            len(c.supporting_ops),
        )
        assert len(set(c.sampled_ops)) == len(c.sampled_ops)  # no op twice in one sample


def test_samples_do_not_depend_on_commit_timing(config: GeneratorConfig, both):
    """Outcomes committed at once, or as late as the lag allows, with samples requested out of order."""
    reference = both[1]
    assert run(CoverageSampler(config), n=300, delay=0) == reference[:300]
    sampler = CoverageSampler(config)
    late: list[Sample] = []
    for start in range(0, 300, sampler.lag):  # a window of samples in flight, requested back to front
        window = [sampler.sample(i) for i in reversed(range(start, min(start + sampler.lag, 300)))]
        late.extend(reversed(window))
        for sample in late[start : start + sampler.lag]:
            sampler.observe(sample, accepted(sample), [])
    assert late == reference[:300]


def test_resume_replays_to_the_same_samples(config: GeneratorConfig, both):
    """A resumed run replays (sample, observe) for the done indices, then continues where it stopped."""
    reference = both[1]
    sampler = CoverageSampler(config)
    for index in range(137):
        sample = sampler.sample(index)
        sampler.observe(sample, accepted(sample), [])
    assert run_from(sampler, 137, 400) == reference[137:400]


def run_from(sampler: CoverageSampler, start: int, stop: int) -> list[Sample]:
    out = []
    for index in range(start, stop):
        out.append(sampler.sample(index))
        sampler.observe(out[-1], accepted(out[-1]), [])
    return out


def test_seed_changes_the_samples(config: GeneratorConfig, both):
    other = run(CoverageSampler(GeneratorConfig(seed=6, sampling="coverage")), n=50)
    assert [s.sampled_ops for s in other] != [s.sampled_ops for s in both[1][:50]]
