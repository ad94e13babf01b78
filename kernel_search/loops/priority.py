"""Priority search: a queue of attempts ordered by score; the best is expanded with its feedback, its children
join the queue, and the expanded attempt goes back with a penalty (so a plateau does not absorb the budget).

Accepted attempts rank by speedup; rejected ones below all of them (a broken start is still worth one repair).
"""

from __future__ import annotations

import heapq
from typing import Any

from kernel_search.loops.base import SearchLoop
from kernel_search.loops.proposal import Proposer
from kernel_search.loops.scoring import Scorer
from kernel_search.loops.trajectory import Attempt
from kernel_search.tasks import Task


class PriorityLoop(SearchLoop):
    name = "priority"

    def __init__(
        self,
        proposer: Proposer,
        scorer: Scorer,
        budget: Any = None,
        *,
        initial: int = 2,
        children: int = 2,
        penalty: float = 0.1,
        seed: int = 0,
    ):
        super().__init__(proposer, scorer, budget, seed=seed)
        if initial < 1 or children < 1 or penalty < 0:
            raise ValueError("initial and children must be >= 1 and penalty >= 0")
        self.initial, self.children, self.penalty = initial, children, penalty
        self._expansions: dict[int, int] = {}

    def priority(self, attempt: Attempt) -> float:
        base = attempt.score if attempt.accepted else -1.0
        return base - self.penalty * self._expansions.get(attempt.index, 0)

    def _push(self, queue: list[tuple[float, int]], attempt: Attempt) -> None:
        heapq.heappush(queue, (-self.priority(attempt), -attempt.index))

    def _search(self, task: Task) -> str:
        queue: list[tuple[float, int]] = []
        self._expansions = {}
        for proposal in self.proposer.start(task, self.initial):
            self._push(queue, self.attempt(task, proposal))
        expansion = 0
        while queue:
            _, negative_index = heapq.heappop(queue)
            parent = self.attempts[-negative_index]
            expansion += 1
            made = 0
            for _ in range(self.children):
                proposal = self.proposer.refine(task, parent, self.attempts)
                if proposal.exhausted:
                    break
                self._push(queue, self.attempt(task, proposal, parent=parent, round=expansion))
                made += 1
            self._expansions[parent.index] = self._expansions.get(parent.index, 0) + 1
            if made:
                self._push(queue, parent)
        return "queue empty"

    def settings(self) -> dict[str, Any]:
        return {"initial": self.initial, "children": self.children, "penalty": self.penalty}
