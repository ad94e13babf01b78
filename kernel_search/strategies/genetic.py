"""Genetic search: tournament selection, uniform crossover, per-parameter mutation and elitism.

Each generation is one batch. Elites (the best `elite_count` configs seen so far) pass unchanged and are not
re-evaluated (the Tuner serves their scores from its cache); children that repeat a seen config are mutated
again, a few times, so a generation spends its evaluations on new configs.
"""

from __future__ import annotations

from kernel_search.strategies.base import SearchStrategy
from kernel_search.tuning.search_space import Config, config_key

_REDRAWS = 8


class GeneticSearch(SearchStrategy):
    name = "ga"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.population: list[Config] = []

    def propose(self) -> list[Config]:
        size = max(2, self.settings.population_size)
        if not self.population:
            first = self.space.default_config()
            batch = [first] if first is not None else []
            keys = {config_key(c) for c in batch}
            while len(batch) < size:
                config = self.fresh_random(avoid=keys)
                keys.add(config_key(config))
                batch.append(config)
            self.population = batch
            return batch
        ranked = sorted(self.population, key=self.score_of, reverse=True)
        elites = ranked[: min(self.settings.elite_count, size - 1)]
        children: list[Config] = []
        keys = {config_key(c) for c in elites}
        while len(children) < size - len(elites):
            child = self._child()
            for _ in range(_REDRAWS):
                key = config_key(child)
                if key not in keys and not self.seen(child) and self.space.is_valid(child):
                    break
                child = self.space.mutate(child, self.rng, self.settings.mutation_rate)
            if not self.space.is_valid(child):
                child = self.fresh_random(avoid=keys)
            keys.add(config_key(child))
            children.append(child)
        self.population = elites + children
        return children

    def _tournament(self) -> Config:
        entrants = [self.rng.choice(self.population) for _ in range(max(1, self.settings.tournament_size))]
        return max(entrants, key=self.score_of)

    def _child(self) -> Config:
        first = self._tournament()
        if self.rng.random() < self.settings.crossover_rate:
            child = self.space.crossover(first, self._tournament(), self.rng)
        else:
            child = dict(first)
        if self.rng.random() < max(self.settings.mutation_rate, 1e-9) or config_key(child) == config_key(
            first
        ):
            child = self.space.mutate(child, self.rng, self.settings.mutation_rate)
        return child
