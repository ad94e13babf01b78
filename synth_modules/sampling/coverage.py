"""Coverage-guided sampling (`sampling=coverage`): steer which ops are drawn toward ops and op pairs that are
under-represented among accepted programs.

How many ops of each kind a sample gets keeps popcorn semantics: the counts are exactly those the uniform
sampler draws for the same seed and index. Only which ops fill those slots is weighted (and an op is not repeated
within a sample): an op's weight falls with how often it, and its pairing with each op already chosen for the
sample, appears among accepted programs (rejected attempts count partly, so hopeless combinations fade).

Determinism: the pipeline commits outcomes strictly in index order and, before calling `sample(i)`, waits until
index `i - lag` is committed. `sample(i)` therefore uses only observations of indices below `i - lag` -- the same
set however fast each sample ran -- plus, for the `lag` samples in flight, their own sampled ops weighted by the
acceptance rate seen so far (they are computed here, so they are deterministic too). Samples are computed in
index order and memoized, so `sample(i)` is a pure function of the seed, the config and the earlier outcomes.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence

from synth_modules.config import GeneratorConfig
from synth_modules.sampling.uniform import UniformSampler, sample_rng
from synth_modules.types import Sample

KINDS = ("core", "compound", "supporting")
DEFAULT_LAG = 64
_PRIOR_ACCEPT = (1.0, 2.0)  # pseudo-counts (accepted, observed) for the acceptance-rate estimate


class CoverageSampler:
    """A Sampler (synth_modules.sampling) whose op choice favours under-covered ops and op pairs.

    `pools` maps each kind ("core", "compound", "supporting") to the op names it is drawn from; by default the
    uniform sampler's lists (the sampleable catalog ops). `op_power` and `pair_power` set how strongly counts
    repel; `failure_weight` is what a rejected sample adds to the counts of its ops and pairs (accepted: 1).
    """

    def __init__(
        self,
        config: GeneratorConfig,
        pools: Mapping[str, Sequence[str]] | None = None,
        lag: int = DEFAULT_LAG,
        op_power: float = 1.0,
        pair_power: float = 8.0,
        failure_weight: float = 0.5,
    ):
        self.config = config
        self._uniform = UniformSampler(config)
        self.pools = {kind: list((pools or self._uniform.lists)[kind]) for kind in KINDS}
        self.lag = lag
        self.op_power = op_power
        self.pair_power = pair_power
        self.failure_weight = failure_weight
        self._samples: dict[int, Sample] = {}
        self._next = 0  # samples below this index are computed
        self._outcomes: dict[int, bool] = {}  # index -> accepted?
        self._cutoff = 0  # outcomes below this index are folded into the counts
        self._op_counts: Counter[str] = Counter()
        self._pair_counts: Counter[tuple[str, str]] = Counter()
        self._pending_ops: Counter[str] = Counter()  # ops of computed samples not yet counted
        self._pending_pairs: Counter[tuple[str, str]] = Counter()
        self._accepted = 0
        self._folded = 0

    # ----- Sampler protocol ---------------------------------------------------------------------------------
    def sample(self, index: int) -> Sample:
        while self._next <= index:
            sample = self._compute(self._next)
            self._samples[self._next] = sample
            self._window(sample, +1)
            self._next += 1
        return self._samples[index]

    def observe(self, sample: Sample, accepted: bool, final_pattern: list[str]) -> None:
        """Record an outcome; it counts for samples whose index is more than `lag` above it."""
        self._outcomes[sample.index] = accepted

    # ----- internals -----------------------------------------------------------------------------------------
    def _window(self, sample: Sample, sign: int) -> None:
        """Add (+1) or remove (-1) a computed-but-not-yet-counted sample's ops from the in-flight counts."""
        self._count(self._pending_ops, self._pending_pairs, sample, float(sign))

    def _fold_until(self, cutoff: int) -> None:
        """Move indices [self._cutoff, cutoff) from in flight to counted (missing outcomes count as rejected).

        An accepted sample counts 1 for each of its ops and op pairs; a rejected one `failure_weight`, so that
        combinations that keep failing lose their pull instead of being retried forever.
        """
        while self._cutoff < cutoff:
            sample = self._samples[self._cutoff]
            self._window(sample, -1)
            accepted = self._outcomes.pop(self._cutoff, False)
            self._folded += 1
            self._accepted += accepted
            self._count(self._op_counts, self._pair_counts, sample, 1.0 if accepted else self.failure_weight)
            self._cutoff += 1

    @staticmethod
    def _count(ops: Counter, pairs: Counter, sample: Sample, amount: float) -> None:
        unique = sorted(set(sample.sampled_ops))
        ops.update(dict.fromkeys(unique, amount))
        pairs.update(dict.fromkeys(itertools.combinations(unique, 2), amount))

    def _op_term(self, op: str, rate: float) -> float:
        return -self.op_power * math.log1p(
            self._op_counts.get(op, 0.0) + rate * self._pending_ops.get(op, 0.0)
        )

    def _pair_term(self, op: str, other: str, rate: float) -> float:
        pair = (op, other) if op <= other else (other, op)
        count = self._pair_counts.get(pair, 0.0) + rate * self._pending_pairs.get(pair, 0.0)
        return -self.pair_power * math.log1p(count)

    def _choose(
        self, rng: random.Random, pool: list[str], count: int, chosen: list[str], rate: float
    ) -> list[str]:
        """Draw `count` distinct ops; log weight = op term + a pair term per op already in the sample."""
        logs = {
            op: self._op_term(op, rate) + sum(self._pair_term(op, other, rate) for other in chosen)
            for op in pool
            if op not in chosen
        }
        picked: list[str] = []
        for _ in range(min(count, len(logs))):
            candidates = list(logs)
            top = max(logs.values())  # normalize in log space: large counts must not underflow to all zeros
            choice = rng.choices(candidates, weights=[math.exp(logs[op] - top) for op in candidates], k=1)[0]
            picked.append(choice)
            del logs[choice]
            for op in logs:
                logs[op] += self._pair_term(op, choice, rate)
        return picked

    def _compute(self, index: int) -> Sample:
        self._fold_until(max(0, index - self.lag))
        # in-flight samples count as accepted with the acceptance rate seen so far
        accept = (self._accepted + _PRIOR_ACCEPT[0]) / (self._folded + _PRIOR_ACCEPT[1])
        rate = accept + (1.0 - accept) * self.failure_weight
        uniform = self._uniform.sample(index)  # popcorn counts, exactly as uniform sampling draws them
        counts = {"core": len(uniform.core_ops), "compound": len(uniform.compound_ops)}
        counts["supporting"] = len(uniform.supporting_ops)
        rng = sample_rng(self.config.seed, index, "coverage")
        chosen: list[str] = []
        by_kind: dict[str, list[str]] = {}
        for kind in KINDS:
            by_kind[kind] = self._choose(rng, self.pools[kind], counts[kind], chosen, rate)
            chosen += by_kind[kind]
        return dataclasses.replace(
            uniform,
            core_ops=by_kind["core"],
            compound_ops=by_kind["compound"],
            supporting_ops=by_kind["supporting"],
        )
