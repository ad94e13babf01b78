"""UniformSampler: popcorn's truncated-geometric counts, the three op lists, reproducibility."""

from __future__ import annotations

import collections
import math

import pytest

import operators
from synth_modules.config import GeneratorConfig
from synth_modules.sampling import UniformSampler, draw_count, sample_rng

N = 4000


def _expected(lo: int, hi: int, p: float) -> dict[int, float]:
    """P(count = lo + k) = p (1-p)^k below the max; the max takes the remaining mass."""
    probs = {lo + k: p * (1 - p) ** k for k in range(hi - lo)}
    probs[hi] = (1 - p) ** (hi - lo)
    return probs


def _counts(config: GeneratorConfig, field: str) -> collections.Counter[int]:
    sampler = UniformSampler(config)
    return collections.Counter(len(getattr(sampler.sample(i), field)) for i in range(N))


@pytest.mark.parametrize(
    ("bounds", "p"),
    [([1, 5], 0.5), ([0, 5], 0.3), ([1, 8], 0.3), ([2, 4], 0.8), ([0, 1], 0.5), ([3, 3], 0.4)],
)
@pytest.mark.parametrize("field", ["core_ops", "compound_ops", "supporting_ops"])
def test_counts_follow_truncated_geometric_law(bounds: list[int], p: float, field: str) -> None:
    key = {"core_ops": "num_core_ops_range", "compound_ops": "num_compound_ops_range"}.get(
        field, "num_supporting_ops_range"
    )
    if key == "num_core_ops_range" and bounds[0] < 1:
        pytest.skip("core range minimum is at least 1")
    config = GeneratorConfig(**{key: bounds}, p_value=p, seed=7)
    counts = _counts(config, field)
    expected = _expected(bounds[0], bounds[1], p)
    assert set(counts) <= set(expected), f"counts outside {bounds}: {sorted(counts)}"
    for value, prob in expected.items():
        observed = counts[value] / N
        sigma = math.sqrt(prob * (1 - prob) / N)
        assert abs(observed - prob) <= 4 * sigma + 1e-9, (value, observed, prob)


def test_higher_p_gives_fewer_ops() -> None:
    means = []
    for p in (0.2, 0.5, 0.9):
        config = GeneratorConfig(num_supporting_ops_range=[1, 8], p_value=p)
        counts = _counts(config, "supporting_ops")
        means.append(sum(k * v for k, v in counts.items()) / N)
    assert means[0] > means[1] > means[2]


def test_p_one_gives_the_minimum() -> None:
    config = GeneratorConfig(
        num_core_ops_range=[2, 5], num_compound_ops_range=[1, 4], num_supporting_ops_range=[3, 9], p_value=1.0
    )
    sampler = UniformSampler(config)
    for i in range(300):
        s = sampler.sample(i)
        assert (len(s.core_ops), len(s.compound_ops), len(s.supporting_ops)) == (2, 1, 3)


def test_draw_count_matches_popcorn_semantics() -> None:
    rng = sample_rng(0, 0)
    assert all(draw_count(rng, [4, 4], 0.01) == 4 for _ in range(50))
    assert all(0 <= draw_count(rng, [0, 3], 0.2) <= 3 for _ in range(200))


def test_ops_come_from_their_own_lists_and_compound_ops_are_sampled() -> None:
    config = GeneratorConfig(num_compound_ops_range=[1, 3], num_supporting_ops_range=[1, 6], p_value=0.3)
    sampler = UniformSampler(config)
    core = {op.name for op in operators.core_ops()}
    compound = {op.name for op in operators.compound_ops()}
    supporting = {op.name for op in operators.supporting_ops()}
    seen_compound: set[str] = set()
    for i in range(2000):
        s = sampler.sample(i)
        assert s.compound_ops, "num_compound_ops_range=[1,3] must give at least one compound op"
        assert set(s.core_ops) <= core
        assert set(s.compound_ops) <= compound
        assert set(s.supporting_ops) <= supporting
        seen_compound |= set(s.compound_ops)
    assert seen_compound == compound, f"never sampled: {sorted(compound - seen_compound)}"


def test_unsupported_ops_are_never_sampled() -> None:
    unsupported = {op.name for op in operators.all_ops() if not op.sampleable}
    assert unsupported, "the catalog documents at least one Inductor-unsupported op"
    sampler = UniformSampler(GeneratorConfig(num_supporting_ops_range=[4, 8], p_value=0.2))
    for i in range(2000):
        assert not set(sampler.sample(i).sampled_ops) & unsupported


def test_every_sampleable_op_gets_sampled() -> None:
    config = GeneratorConfig(num_compound_ops_range=[0, 2], num_supporting_ops_range=[2, 8], p_value=0.3)
    sampler = UniformSampler(config)
    seen: set[str] = set()
    for i in range(3000):
        seen |= set(sampler.sample(i).sampled_ops)
    sampleable = {op.name for op in operators.all_ops(include_unsupported=False)}
    assert seen == sampleable, sorted(sampleable - seen)


def test_reproducible_per_seed_and_index_in_any_order() -> None:
    config = GeneratorConfig(seed=11, num_compound_ops_range=[0, 2])
    first = UniformSampler(config)
    forward = [first.sample(i) for i in range(50)]
    second = UniformSampler(GeneratorConfig(seed=11, num_compound_ops_range=[0, 2]))
    backward = [second.sample(i) for i in reversed(range(50))][::-1]
    assert forward == backward
    assert first.sample(17) == forward[17]
    assert forward[3].id == "s11-0000003" and forward[3].seed == 11


def test_different_seeds_and_indices_differ() -> None:
    a = UniformSampler(GeneratorConfig(seed=1))
    b = UniformSampler(GeneratorConfig(seed=2))
    patterns_a = [a.sample(i).sampled_ops for i in range(100)]
    patterns_b = [b.sample(i).sampled_ops for i in range(100)]
    assert patterns_a != patterns_b
    assert sum(x != y for x, y in zip(patterns_a, patterns_b, strict=True)) > 80
    assert len({tuple(p) for p in patterns_a}) > 90


def test_observe_is_a_no_op() -> None:
    sampler = UniformSampler(GeneratorConfig(seed=3))
    before = sampler.sample(5)
    sampler.observe(before, accepted=False, final_pattern=[])
    assert sampler.sample(5) == before
