"""Sampling op patterns from the catalog with popcorn semantics, reproducibly per sample index."""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Protocol

from synth_modules.types import Sample

if TYPE_CHECKING:
    from synth_modules.config import GeneratorConfig


def sample_id(seed: int, index: int) -> str:
    """Deterministic id of sample `index` in a run with `seed` (resume relies on this)."""
    return f"s{seed}-{index:07d}"


def sample_rng(seed: int, index: int, salt: str = "") -> random.Random:
    """An RNG private to one sample, independent of the order samples are processed in."""
    digest = hashlib.sha256(f"{seed}:{index}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def draw_count(rng: random.Random, bounds: list[int], p_value: float) -> int:
    """Truncated geometric draw (popcorn): start at min, add one while random() > p and below max.

    Higher p -> fewer ops; p = 1 always gives the minimum.
    """
    low, high = bounds
    count = low
    while count < high and rng.random() > p_value:
        count += 1
    return count


class Sampler(Protocol):
    """Chooses the ops of each sample; `observe` is fed accepted/rejected outcomes in commit order."""

    def sample(self, index: int) -> Sample: ...

    def observe(self, sample: Sample, accepted: bool, final_pattern: list[str]) -> None: ...


class UniformSampler:
    """Popcorn sampling: per list, a truncated-geometric count of ops drawn uniformly (with replacement).

    Core ops come from the core list, compound from the compound list, supporting from the supporting list;
    ops marked Inductor-unsupported are never drawn. Deterministic per (config.seed, index), whatever order
    samples are requested in.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        import operators

        self.config = config
        self.lists = {
            "core": [op.name for op in operators.core_ops()],
            "compound": [op.name for op in operators.compound_ops()],
            "supporting": [op.name for op in operators.supporting_ops()],
        }

    def sample(self, index: int) -> Sample:
        cfg = self.config
        rng = sample_rng(cfg.seed, index, "sample")
        chosen: dict[str, list[str]] = {}
        for kind, bounds in (
            ("core", cfg.num_core_ops_range),
            ("compound", cfg.num_compound_ops_range),
            ("supporting", cfg.num_supporting_ops_range),
        ):
            count = draw_count(rng, list(bounds), cfg.p_value)
            pool = self.lists[kind]
            chosen[kind] = [rng.choice(pool) for _ in range(count)] if pool else []
        return Sample(
            index=index,
            id=sample_id(cfg.seed, index),
            seed=cfg.seed,
            core_ops=chosen["core"],
            compound_ops=chosen["compound"],
            supporting_ops=chosen["supporting"],
        )

    def observe(self, sample: Sample, accepted: bool, final_pattern: list[str]) -> None:
        """Uniform sampling ignores outcomes."""
