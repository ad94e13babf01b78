"""Differential evolution on parameter indices (DE/rand/1/bin), rounded to the nearest allowed value.

Each parameter is its index into the value list, so ordered values (block sizes, warps) move smoothly;
categorical ones are still reachable through the binomial crossover. A trial vector replaces its target when
it scores at least as well. One generation (one trial per population member) is one batch.
"""

from __future__ import annotations

from kernel_search.strategies.base import SearchStrategy
from kernel_search.tuning.search_space import Config, config_key

_REDRAWS = 8


class DifferentialEvolution(SearchStrategy):
    name = "de"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.population: list[list[float]] = []  # index vectors
        self.trials: list[list[float]] = []

    def _decode(self, vector: list[float]) -> Config:
        return self.space.from_indices(vector)

    def propose(self) -> list[Config]:
        size = max(4, self.settings.population_size)
        if not self.population:
            keys: set[str] = set()
            first = self.space.default_config()
            configs = [first] if first is not None else []
            keys.update(config_key(c) for c in configs)
            while len(configs) < size:
                config = self.fresh_random(avoid=keys)
                keys.add(config_key(config))
                configs.append(config)
            self.population = [[float(i) for i in self.space.to_indices(c)] for c in configs]
            return configs
        self._select()
        self.trials = []
        batch: list[Config] = []
        keys = set()
        for target_index, target in enumerate(self.population):
            trial = self._trial(target_index, target)
            config = self._decode(trial)
            for _ in range(_REDRAWS):
                if self.space.is_valid(config) and not self.seen(config) and config_key(config) not in keys:
                    break
                trial = self._trial(target_index, target)
                config = self._decode(trial)
            if not self.space.is_valid(config):
                config = self.fresh_random(avoid=keys)
                trial = [float(i) for i in self.space.to_indices(config)]
            keys.add(config_key(config))
            self.trials.append(trial)
            batch.append(config)
        return batch

    def _trial(self, target_index: int, target: list[float]) -> list[float]:
        others = [i for i in range(len(self.population)) if i != target_index]
        a, b, c = (self.population[i] for i in self.rng.sample(others, 3))
        weight = self.settings.differential_weight
        forced = self.rng.randrange(len(target))
        trial = []
        for d, name in enumerate(self.space.names):
            top = len(self.space.parameters[name]) - 1
            if d == forced or self.rng.random() < self.settings.crossover_rate:
                value = a[d] + weight * (b[d] - c[d])
                if abs(value - target[d]) < 0.5 and top > 0:  # a zero step: nudge one value instead
                    value = target[d] + self.rng.choice((-1, 1))
                trial.append(min(float(top), max(0.0, value)))
            else:
                trial.append(target[d])
        return trial

    def _select(self) -> None:
        """Greedy replacement of each target by its trial from the previous generation."""
        for i, trial in enumerate(self.trials):
            if i < len(self.population) and self.score_of(self._decode(trial)) >= self.score_of(
                self._decode(self.population[i])
            ):
                self.population[i] = trial
