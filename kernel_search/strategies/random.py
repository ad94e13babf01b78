"""Random search without replacement: every config at most once, so an exhaustive budget enumerates the space."""

from __future__ import annotations

from kernel_search.strategies.base import SearchStrategy
from kernel_search.tuning.search_space import Config

# Spaces up to this size are shuffled up front (exact sampling without replacement); larger ones are drawn.
_ENUMERATE_LIMIT = 200_000


class RandomSearch(SearchStrategy):
    name = "random"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._order: list[Config] | None = None
        if self.space.size <= _ENUMERATE_LIMIT:
            order = [c for c in self.space.all_configs() if self.space.is_valid(c)]
            self.rng.shuffle(order)
            self._order = order

    def propose(self) -> list[Config]:
        batch: list[Config] = []
        if self._order is not None:
            while self._order and len(batch) < self.settings.batch_size:
                config = self._order.pop()
                if not self.seen(config):
                    batch.append(config)
            return batch
        return [self.fresh_random() for _ in range(self.settings.batch_size)]
