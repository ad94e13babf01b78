"""Sequential refinement (KernelBench-DSPy style): generate, evaluate, refine with the evaluator's feedback until
the speedup reaches the target or the attempts run out.

Each refinement builds on the best accepted attempt so far, or, while nothing is accepted, on the latest
attempt (so a broken kernel goes back with its error message, the way a person would iterate).
"""

from __future__ import annotations

from typing import Any

from kernel_search.loops.base import SearchLoop
from kernel_search.loops.trajectory import Attempt
from kernel_search.tasks import Task


class RefineLoop(SearchLoop):
    name = "refine"

    def parent(self) -> Attempt:
        return self.best() or self.attempts[-1]

    def _search(self, task: Task) -> str:
        for proposal in self.proposer.start(task, 1):
            self.attempt(task, proposal)
        while True:
            parent = self.parent()
            proposal = self.proposer.refine(task, parent, self.attempts)
            if proposal.exhausted:
                return "search space exhausted"
            self.attempt(task, proposal, parent=parent, round=len(self.attempts))

    def settings(self) -> dict[str, Any]:
        return {"strategy": "refine best-or-latest"}
