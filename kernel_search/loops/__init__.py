"""Kernel-optimization loops over the evaluator: refinement, beam search, priority search, evolution.

`LOOPS` is the registry (an unknown name lists the valid ones); every loop takes a Proposer (offline edits of
Inductor's code, or an LLM) and a Scorer (the evaluator behind a measurement cache) and returns a Trajectory.
"""

from __future__ import annotations

from kernel_search.loops.base import LoopBudget, SearchLoop
from kernel_search.loops.beam import BeamLoop
from kernel_search.loops.evolve import EvolveLoop
from kernel_search.loops.priority import PriorityLoop
from kernel_search.loops.refine import RefineLoop
from kernel_search.loops.trajectory import Attempt, Trajectory

LOOPS: dict[str, type[SearchLoop]] = {
    "refine": RefineLoop,
    "beam": BeamLoop,
    "priority": PriorityLoop,
    "evolve": EvolveLoop,
}


def loop_class(name: str) -> type[SearchLoop]:
    if name not in LOOPS:
        raise ValueError(f"unknown loop {name!r}; choose from {', '.join(LOOPS)}")
    return LOOPS[name]


__all__ = ["LOOPS", "Attempt", "LoopBudget", "SearchLoop", "Trajectory", "loop_class"]
