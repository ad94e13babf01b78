"""Pattern (coordinate) search: from the best point so far, try every one-parameter change; move to the best.

A batch is the current point's untried neighbours. When none improves, the search restarts from a random
unseen config (so it keeps spending its budget instead of stalling in a local optimum).
"""

from __future__ import annotations

from kernel_search.strategies.base import SearchStrategy
from kernel_search.tuning.search_space import Config, config_key


class PatternSearch(SearchStrategy):
    name = "pattern"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.center: Config | None = None

    def propose(self) -> list[Config]:
        if self.center is None:
            start = self.space.default_config() if self.settings.start_from_default else None
            self.center = start or self.fresh_random()
            if not self.seen(self.center):
                return [self.center]
        for _ in range(100):
            best_neighbour = self._best_seen_neighbour()
            if best_neighbour is not None and self.score_of(best_neighbour) > self.score_of(self.center):
                self.center = best_neighbour
            untried = [c for c in self.space.neighbours(self.center) if not self.seen(c)]
            if untried:
                return untried
            if len(self.scores) >= self.space.size:
                return []
            self.center = self.fresh_random()  # a local optimum with every neighbour tried: restart
            if not self.seen(self.center):
                return [self.center]
        return []

    def _best_seen_neighbour(self) -> Config | None:
        assert self.center is not None
        tried = [c for c in self.space.neighbours(self.center) if config_key(c) in self.scores]
        return max(tried, key=self.score_of, default=None)
