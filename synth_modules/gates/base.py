"""The quality-gate interface: one small step that answers keep-or-reject with a reason."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from synth_modules.types import GateDecision, Verdict


@dataclass
class GateInput:
    """What a gate sees of an accepted-so-far program."""

    id: str
    entry_point: str
    source: str
    final_pattern: list[str]
    verdict: Verdict
    extra: dict = field(default_factory=dict)


class Gate(abc.ABC):
    """A filter over validated programs. Adding a gate is adding one file that subclasses this."""

    name: str = "gate"
    # Stateful gates (dedup) depend on what was accepted before, so the pipeline runs them at commit time,
    # in sample-index order; stateless ones run before the commit (see needs_verdict) and may trigger a repair.
    stateful: bool = False
    # A gate that reads only the source (not the sandbox's verdict) runs before validation, so a program it
    # rejects costs no eager run and no compile.
    needs_verdict: bool = True

    @abc.abstractmethod
    def check(self, item: GateInput) -> GateDecision: ...

    def admit(self, item: GateInput) -> None:  # noqa: B027 -- optional hook for stateful gates
        """Called once the program is finally accepted, so stateful gates (dedup) remember it."""
