"""Sampling op patterns from the catalog with popcorn semantics, reproducibly per sample index."""

from __future__ import annotations

import hashlib
import random
from typing import Protocol

from synth_modules.types import Sample


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
