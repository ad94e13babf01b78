"""Evolution over code (OpenEvolve style): islands, each a MAP-Elites grid; parents drawn from an island's
elites, children written by the proposer with other elites as inspiration; periodic migration of each
island's best to the next; cascade evaluation (the cheap correctness stage first, timing only for survivors).

An island with no elite yet evolves from its latest attempt, so a broken first program is repaired rather
than dropped.
"""

from __future__ import annotations

import random
from typing import Any

from kernel_search.loops.base import SearchLoop
from kernel_search.loops.map_elites import EliteGrid
from kernel_search.loops.proposal import Proposer
from kernel_search.loops.scoring import Scorer
from kernel_search.loops.trajectory import Attempt
from kernel_search.tasks import Task


class EvolveLoop(SearchLoop):
    name = "evolve"

    def __init__(
        self,
        proposer: Proposer,
        scorer: Scorer,
        budget: Any = None,
        *,
        islands: int = 2,
        generations: int = 4,
        migration_interval: int = 2,
        exploit: float = 0.7,
        cascade: bool = True,
        seed: int = 0,
    ):
        super().__init__(proposer, scorer, budget, seed=seed)
        if islands < 1 or generations < 0 or migration_interval < 1 or not 0.0 <= exploit <= 1.0:
            raise ValueError("islands, migration_interval >= 1; generations >= 0; exploit in [0, 1]")
        self.islands, self.generations = islands, generations
        self.migration_interval, self.exploit, self.cascade = migration_interval, exploit, cascade
        self.grids: list[EliteGrid] = []
        self._latest: list[Attempt | None] = []
        self.migrations = 0

    def _choose_parent(self, island: int, rng: random.Random) -> Attempt | None:
        elites = self.grids[island].elites()
        if not elites:
            return self._latest[island]
        if rng.random() < self.exploit:
            return elites[0]
        return rng.choice(elites)

    def _record(self, island: int, attempt: Attempt) -> None:
        self._latest[island] = attempt
        self.grids[island].offer(attempt)

    def _migrate(self) -> None:
        bests = [grid.best() for grid in self.grids]
        for island, best in enumerate(bests):
            if best is not None and self.islands > 1 and self.grids[(island + 1) % self.islands].offer(best):
                self.migrations += 1

    def _search(self, task: Task) -> str:
        rng = random.Random(self.seed)
        self.grids = [EliteGrid() for _ in range(self.islands)]
        self._latest = [None] * self.islands
        self.migrations = 0
        for island, proposal in enumerate(self.proposer.start(task, self.islands)):
            self._record(island, self.attempt(task, proposal, island=island, cascade=self.cascade))
        for generation in range(1, self.generations + 1):
            produced = 0
            for island in range(self.islands):
                parent = self._choose_parent(island, rng)
                if parent is None:
                    continue
                inspirations = [a for a in self.grids[island].elites() if a.index != parent.index]
                proposal = self.proposer.mutate(task, parent, inspirations, rng)
                if proposal.exhausted:
                    continue
                child = self.attempt(
                    task, proposal, parent=parent, round=generation, island=island, cascade=self.cascade
                )
                self._record(island, child)
                produced += 1
            if generation % self.migration_interval == 0:
                self._migrate()
            if produced == 0:
                return f"no island produced a child in generation {generation}"
        return f"generations={self.generations} done"

    def settings(self) -> dict[str, Any]:
        return {
            "islands": self.islands,
            "generations": self.generations,
            "migration_interval": self.migration_interval,
            "exploit": self.exploit,
            "cascade": self.cascade,
        }
