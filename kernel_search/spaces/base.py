"""What a task-specific search space provides: parameters, a validity predicate, and code for each config.

A space turns a config into candidate source (a module defining `ModelNew`, KernelBench's convention), which
the evaluator scores; two configs that render the same source are the same candidate and are measured once.
A space that cannot run here (Helion without a working release) raises `SpaceUnavailable` with the reason.
"""

from __future__ import annotations

import abc
from typing import Any

from kernel_search.tuning.search_space import Config


class SpaceUnavailable(RuntimeError):
    """This space cannot be searched on this host; the message says why (shown as-is)."""


class TaskSpace(abc.ABC):
    name: str

    @abc.abstractmethod
    def parameters(self) -> dict[str, list[Any]]:
        """Parameter -> allowed values, each list starting with the default (what the task gets untuned)."""

    def is_valid(self, config: Config) -> bool:
        """Constraints between parameters; every config is valid unless a space says otherwise."""
        return True

    @abc.abstractmethod
    def render(self, config: Config) -> str:
        """Candidate source defining ModelNew for `config`."""

    def describe(self) -> dict[str, Any]:
        return {"space": self.name, "parameters": self.parameters()}
