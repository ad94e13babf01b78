"""What a proposer hands a loop, and the interface every proposer (offline edits or an LLM) implements.

Loops only decide *which* attempt to build on next; a proposer decides *what* the next candidate is. The same
loop therefore runs offline (launch-parameter edits of Inductor's own Triton code) or with a model.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kernel_search.loops.trajectory import Attempt
from kernel_search.tasks import Task


@dataclass
class Proposal:
    code: str
    origin: str
    description: str = ""
    config: dict[str, Any] | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    error: str = ""  # the proposer could not produce code (LLM failure, nothing left to try)
    exhausted: bool = False  # nothing left to propose from this parent (offline spaces run out)


@dataclass
class Idea:
    """A beam-search idea: what to change, in words, and (offline) the config that does it."""

    text: str
    config: dict[str, Any] | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class Proposer(abc.ABC):
    """Proposes candidate sources (each defining ModelNew) for a task."""

    name: str = "proposer"

    @abc.abstractmethod
    def start(self, task: Task, count: int = 1) -> list[Proposal]:
        """First candidates for a task, before any feedback."""

    @abc.abstractmethod
    def refine(self, task: Task, parent: Attempt, history: Sequence[Attempt]) -> Proposal:
        """A new candidate built on `parent`, told its verdict and feedback (and what was tried before)."""

    @abc.abstractmethod
    def ideas(self, task: Task, parent: Attempt, count: int, history: Sequence[Attempt]) -> list[Idea]:
        """Up to `count` distinct optimization ideas for `parent` (beam search's idea call)."""

    @abc.abstractmethod
    def implement(self, task: Task, parent: Attempt, idea: Idea) -> Proposal:
        """The candidate that carries out `idea` on `parent` (beam search's implementation call)."""

    def mutate(
        self, task: Task, parent: Attempt, inspirations: Sequence[Attempt], rng: random.Random
    ) -> Proposal:
        """An evolutionary child of `parent` (other elites as inspiration); refinement unless overridden."""
        return self.refine(task, parent, list(inspirations))

    def close(self) -> None:  # noqa: B027 -- optional hook
        """Release clients."""
