"""The base of every kernel-search loop: budget, evaluation of proposals, trajectory recording, stop reasons.

A loop implements `_search(task)`: it asks its proposer for candidates and calls `self.attempt(...)` for each;
`attempt` evaluates (through the Scorer), records the Attempt with its feedback, tokens and cost, and says when
the budget is spent. `run(task)` wraps that with timing and the stop reason, and returns the Trajectory.
"""

from __future__ import annotations

import abc
import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from kernel_search.loops.feedback import feedback_for
from kernel_search.loops.proposal import Proposal, Proposer
from kernel_search.loops.scoring import Scorer
from kernel_search.loops.trajectory import Attempt, Trajectory
from kernel_search.tasks import Task

log = logging.getLogger("kernel_search.loops")

PROPOSAL_ERROR = "proposal_error"  # the proposer produced no code (LLM failure, nothing left to try)


class BudgetSpent(Exception):
    """Raised by `attempt` once the attempt or time budget is used up; `run` turns it into a stop reason."""


@dataclass(frozen=True)
class LoopBudget:
    max_attempts: int = 10
    max_seconds: float | None = None
    target_speedup: float | None = None  # stop once an accepted attempt is at least this fast vs eager

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.target_speedup is not None and self.target_speedup <= 0:
            raise ValueError(f"target_speedup must be > 0, got {self.target_speedup}")


class TargetReached(Exception):
    pass


class SearchLoop(abc.ABC):
    name = "base"

    def __init__(
        self, proposer: Proposer, scorer: Scorer, budget: LoopBudget | None = None, *, seed: int = 0
    ):
        self.proposer = proposer
        self.scorer = scorer
        self.budget = budget or LoopBudget()
        self.seed = seed
        self.trajectory: Trajectory | None = None
        self._started = 0.0

    # ----- what a loop implements ----------------------------------------------------------------------------
    @abc.abstractmethod
    def _search(self, task: Task) -> str:
        """Propose and attempt until done; return why it stopped (budget exits are handled by `run`)."""

    def settings(self) -> dict[str, Any]:
        """The loop's own settings, recorded in the trajectory."""
        return {}

    # ----- the template --------------------------------------------------------------------------------------
    def run(self, task: Task) -> Trajectory:
        self.trajectory = Trajectory(
            task=task.name,
            loop=self.name,
            proposer=self.proposer.name,
            task_source=task.source,
            settings={"budget": asdict(self.budget), "seed": self.seed, **self.settings()},
        )
        self._started = time.monotonic()
        self.trajectory.started_at = time.time()
        try:
            reason = self._search(task)
        except BudgetSpent as spent:
            reason = str(spent)
        except TargetReached as reached:
            reason = str(reached)
        self.trajectory.stop_reason = reason
        self.trajectory.wall_s = time.monotonic() - self._started
        summary = self.trajectory.summary()
        log.info(
            "%s %s: %d attempts, best %s vs eager, stop: %s",
            self.name,
            task.name,
            summary["attempts"],
            summary["best_speedup_vs_eager"],
            reason,
        )
        return self.trajectory

    # ----- helpers for loops ---------------------------------------------------------------------------------
    @property
    def attempts(self) -> list[Attempt]:
        assert self.trajectory is not None, "attempts exist only while a loop runs"
        return self.trajectory.attempts

    def best(self) -> Attempt | None:
        assert self.trajectory is not None
        return self.trajectory.best

    def remaining(self) -> int:
        return self.budget.max_attempts - len(self.attempts)

    def _check_budget(self) -> None:
        if len(self.attempts) >= self.budget.max_attempts:
            raise BudgetSpent(f"max_attempts={self.budget.max_attempts} reached")
        if (
            self.budget.max_seconds is not None
            and time.monotonic() - self._started >= self.budget.max_seconds
        ):
            raise BudgetSpent(f"max_seconds={self.budget.max_seconds:g} reached")

    def attempt(
        self,
        task: Task,
        proposal: Proposal,
        *,
        parent: Attempt | None = None,
        round: int = 0,
        island: int | None = None,
        cascade: bool = False,
    ) -> Attempt:
        """Evaluate one proposal and record it. Raises BudgetSpent before an attempt the budget has no room for,
        and TargetReached after one that meets the target."""
        self._check_budget()
        record = Attempt(
            index=len(self.attempts),
            origin=proposal.origin,
            code=proposal.code,
            description=proposal.description,
            parent=parent.index if parent else None,
            round=round,
            island=island,
            messages=proposal.messages,
            prompt_tokens=proposal.prompt_tokens,
            completion_tokens=proposal.completion_tokens,
            cost_usd=proposal.cost_usd,
            propose_s=proposal.seconds,
            config=proposal.config,
        )
        if proposal.error:
            record.category, record.message = PROPOSAL_ERROR, proposal.error
        else:
            self._evaluate(task, record, cascade)
        record.feedback = feedback_for(record)
        self.attempts.append(record)
        if record.accepted and self.trajectory is not None:
            self.trajectory.baselines = dict(record_baselines(record, self.trajectory.baselines))
        target = self.budget.target_speedup
        if target is not None and record.accepted and record.score >= target:
            raise TargetReached(f"target speedup {target:g}x reached by attempt {record.index}")
        return record

    def _evaluate(self, task: Task, record: Attempt, cascade: bool) -> None:
        name = f"{self.name}-{record.index}"
        started = time.monotonic()
        if cascade:
            screened, cached = self.scorer.screen(task, record.code, name)
            if not screened.correct:
                _copy_result(record, screened)
                record.stage = "correctness"
                record.eval_s, record.cached = time.monotonic() - started, cached
                return
        result, cached_full = self.scorer.measure(task, record.code, name)
        _copy_result(record, result)
        record.eval_s = time.monotonic() - started
        record.cached = cached_full


def _copy_result(record: Attempt, result: Any) -> None:
    record.category = result.category
    record.correct = bool(result.correct)
    record.hack = result.hack
    record.message = result.message
    record.runtime_us = result.runtime_us
    record.iqr_us = result.iqr_us
    record.speedup_vs_eager = result.speedup_vs_eager
    record.speedup_vs_compile = result.speedup_vs_compile
    record.baselines = dict(result.baselines or {})


def record_baselines(record: Attempt, known: dict[str, float]) -> dict[str, float]:
    merged = dict(known)
    for key, value in (record.baselines or {}).items():
        if isinstance(value, (int, float)) and math.isfinite(value):
            merged[key] = float(value)
    return merged
