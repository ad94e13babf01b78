"""Beam search (TensorWrap style): per round, an idea call and an implementation call for each beam member,
every implementation evaluated; the best `beam` attempts survive into the next round.

Round 0 is `beam` first candidates. A member with no accepted attempt yet stays in the beam (ranked below
every accepted one) so a broken start can still be repaired. `dry_run` stops after the first candidate.
"""

from __future__ import annotations

from typing import Any

from kernel_search.loops.base import SearchLoop
from kernel_search.loops.proposal import Proposer
from kernel_search.loops.scoring import Scorer
from kernel_search.loops.trajectory import Attempt
from kernel_search.tasks import Task


def rank_key(attempt: Attempt) -> tuple[float, int]:
    """Accepted attempts by speedup; the rest after them, latest first."""
    return (attempt.score if attempt.accepted else -1.0, attempt.index)


class BeamLoop(SearchLoop):
    name = "beam"

    def __init__(
        self,
        proposer: Proposer,
        scorer: Scorer,
        budget: Any = None,
        *,
        beam: int = 3,
        rounds: int = 3,
        ideas_per_member: int = 2,
        dry_run: bool = False,
        seed: int = 0,
    ):
        super().__init__(proposer, scorer, budget, seed=seed)
        if beam < 1 or rounds < 0 or ideas_per_member < 1:
            raise ValueError("beam and ideas_per_member must be >= 1 and rounds >= 0")
        self.beam, self.rounds, self.ideas_per_member, self.dry_run = beam, rounds, ideas_per_member, dry_run

    def select(self) -> list[Attempt]:
        return sorted(self.attempts, key=rank_key, reverse=True)[: self.beam]

    def _search(self, task: Task) -> str:
        for proposal in self.proposer.start(task, 1 if self.dry_run else self.beam):
            self.attempt(task, proposal)
        if self.dry_run:
            return "dry run: one candidate"
        for round_number in range(1, self.rounds + 1):
            produced = 0
            for member in self.select():
                for idea in self.proposer.ideas(task, member, self.ideas_per_member, self.attempts):
                    proposal = self.proposer.implement(task, member, idea)
                    self.attempt(task, proposal, parent=member, round=round_number)
                    produced += 1
            if produced == 0:
                return f"no new ideas in round {round_number}"
        return f"rounds={self.rounds} done"

    def settings(self) -> dict[str, Any]:
        return {"beam": self.beam, "rounds": self.rounds, "ideas_per_member": self.ideas_per_member}
