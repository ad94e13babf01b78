"""The contract of a search strategy: it proposes configs and is told their scores; the Tuner does the rest.

Like an optuna sampler, a strategy never evaluates, times, logs or stores anything: `Tuner` owns the budget,
the cache of already-scored configs, invalid-config handling and the history. A strategy sees every result
through `observe` (failures score `FAILURE`, i.e. -inf), so it stays deterministic for a given seed and scores,
which is what makes a resumed run replay the same proposals.
"""

from __future__ import annotations

import abc
import math
import random
from typing import Any, ClassVar

from kernel_search.tuning.search_space import Config, ConfigSpace, config_key

FAILURE = -math.inf


class SearchStrategy(abc.ABC):
    name: ClassVar[str]

    def __init__(self, space: ConfigSpace, rng: random.Random, settings: Any):
        self.space = space
        self.rng = rng
        self.settings = settings
        self.scores: dict[str, float] = {}  # config key -> score, everything observed so far

    @abc.abstractmethod
    def propose(self) -> list[Config]:
        """The next batch to evaluate (at least one config); [] when the strategy has nothing left to try."""

    def observe(self, config: Config, score: float) -> None:
        """Record a result; subclasses extend this to update their state (then call super())."""
        self.scores[config_key(config)] = score

    # ----- helpers shared by strategies ------------------------------------------------------------------------
    def seen(self, config: Config) -> bool:
        return config_key(config) in self.scores

    def score_of(self, config: Config) -> float:
        return self.scores.get(config_key(config), FAILURE)

    def fresh_random(self, avoid: set[str] | None = None, tries: int = 200) -> Config:
        """A random valid config not yet observed (nor in `avoid`), or any valid one if none is found."""
        avoid = avoid or set()
        config = self.space.random_config(self.rng)
        for _ in range(tries):
            key = config_key(config)
            if key not in self.scores and key not in avoid:
                return config
            config = self.space.random_config(self.rng)
        return config

    def close(self) -> None:  # noqa: B027 -- optional hook
        """Release clients (the LLM strategy's event loop and HTTP pool)."""

    def describe(self) -> dict[str, Any]:
        """Settings for metadata.json."""
        return {"strategy": self.name, **vars(self.settings)}
