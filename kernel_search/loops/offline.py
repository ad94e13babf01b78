"""The offline proposer: no key, no network. It starts from Inductor's own code for the task and proposes edits
the evaluator can verify -- by default the launch parameters (block sizes, num_warps, num_stages) of every
Triton kernel in Inductor's capture, through the config search's `triton-launch` space.

A candidate is a config of a `TaskSpace` (kernel_search.spaces) rendered to source, so a proposal is always a
real, runnable module; the evaluator decides whether the edit is correct and faster. Refinement walks one
parameter at a time from the parent's config (smallest moves first), beam ideas are distinct single moves,
evolution mutates and crosses configs. A task whose capture cannot be had falls back to the Inductor-options
space (torch.compile with other options), so the loops still run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from kernel_search.loops.proposal import Idea, Proposal, Proposer
from kernel_search.loops.trajectory import Attempt
from kernel_search.spaces.base import SpaceUnavailable, TaskSpace
from kernel_search.tasks import Task
from kernel_search.tuning.search_space import Config, ConfigSpace, config_key

SpaceFactory = Callable[[Task], TaskSpace]


def _distance(space: ConfigSpace, first: Config, second: Config) -> float:
    """How far apart two configs are: log2 steps for numbers, 1 for any other change."""
    total = 0.0
    for name in space.names:
        a, b = first[name], second[name]
        if a == b:
            continue
        numeric = isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and a > 0 and b > 0
        total += abs(math.log2(a / b)) if numeric else 1.0
    return total


def describe_change(before: Config | None, after: Config) -> str:
    if before is None:
        return "Inductor's code as captured"
    changes = [
        f"{name}: {before[name]} -> {after[name]}" for name in after if before.get(name) != after[name]
    ]
    return "; ".join(changes) or "no change"


class OfflineProposer(Proposer):
    name = "offline"

    def __init__(self, space_factory: SpaceFactory, *, seed: int = 0):
        self.space_factory = space_factory
        self.rng = random.Random(seed)
        self._spaces: dict[str, tuple[TaskSpace, ConfigSpace]] = {}
        self._seen: dict[str, set[str]] = {}

    # ----- the task's space --------------------------------------------------------------------------------
    def space(self, task: Task) -> tuple[TaskSpace, ConfigSpace]:
        if task.name not in self._spaces:
            task_space = self.space_factory(task)
            config_space = ConfigSpace(task_space.parameters(), task_space.is_valid)
            self._spaces[task.name] = (task_space, config_space)
            self._seen[task.name] = set()
        return self._spaces[task.name]

    def _proposal(self, task: Task, config: Config, parent: Config | None, origin: str) -> Proposal:
        task_space, config_space = self.space(task)
        config = config_space.normalize(config)
        self._seen[task.name].add(config_key(config))
        description = f"{task_space.name}: {describe_change(parent, config)}"
        try:
            code = task_space.render(config)
        except Exception as error:  # a space that cannot render a valid config is a bug worth seeing
            return Proposal("", origin, description, config, error=f"render failed: {error}")
        return Proposal(code, origin, description, config)

    def _untried_moves(self, task: Task, config: Config) -> list[Config]:
        _, config_space = self.space(task)
        seen = self._seen[task.name]
        moves = [c for c in config_space.neighbours(config) if config_key(c) not in seen]
        self.rng.shuffle(moves)  # ties broken at random, smallest moves first
        moves.sort(key=lambda c: _distance(config_space, config, c))
        return moves

    def _nothing_left(self, origin: str) -> Proposal:
        return Proposal(
            "", origin, "", error="no untried configuration left near this candidate", exhausted=True
        )

    # ----- Proposer ----------------------------------------------------------------------------------------
    def start(self, task: Task, count: int = 1) -> list[Proposal]:
        try:
            _, config_space = self.space(task)
        except (SpaceUnavailable, ValueError) as error:
            return [Proposal("", "inductor", error=f"no offline starting point: {error}")]
        default = config_space.default_config() or config_space.random_config(self.rng)
        proposals = [self._proposal(task, default, None, "inductor")]
        for move in self._untried_moves(task, default)[: max(0, count - 1)]:
            proposals.append(self._proposal(task, move, default, "launch-edit"))
        return proposals

    def refine(self, task: Task, parent: Attempt, history: Sequence[Attempt]) -> Proposal:
        if parent.config is None:
            return self._nothing_left("launch-edit")
        moves = self._untried_moves(task, parent.config)
        if moves:
            return self._proposal(task, moves[0], parent.config, "launch-edit")
        return self._random_unseen(task, parent.config, "launch-edit")

    def ideas(self, task: Task, parent: Attempt, count: int, history: Sequence[Attempt]) -> list[Idea]:
        if parent.config is None:
            return []
        task_space, _ = self.space(task)
        return [
            Idea(f"{task_space.name}: {describe_change(parent.config, move)}", move)
            for move in self._untried_moves(task, parent.config)[:count]
        ]

    def implement(self, task: Task, parent: Attempt, idea: Idea) -> Proposal:
        if idea.config is None:
            return Proposal("", "launch-edit", idea.text, error="the idea carries no config")
        return self._proposal(task, idea.config, parent.config, "launch-edit")

    def mutate(
        self, task: Task, parent: Attempt, inspirations: Sequence[Attempt], rng: random.Random
    ) -> Proposal:
        if parent.config is None:
            return self._nothing_left("mutation")
        _, config_space = self.space(task)
        others = [a.config for a in inspirations if a.config is not None and a.config != parent.config]
        seen = self._seen[task.name]
        for _ in range(32):
            child = dict(parent.config)
            if others and rng.random() < 0.5:
                child = config_space.crossover(child, rng.choice(others), rng)
            child = config_space.mutate(child, rng, rate=0.3)
            if config_space.is_valid(child) and config_key(child) not in seen:
                return self._proposal(task, child, parent.config, "mutation")
        return self.refine(task, parent, inspirations)

    def _random_unseen(self, task: Task, around: Config, origin: str) -> Proposal:
        _, config_space = self.space(task)
        seen = self._seen[task.name]
        for _ in range(64):
            candidate = config_space.mutate(around, self.rng, rate=0.5)
            if config_space.is_valid(candidate) and config_key(candidate) not in seen:
                return self._proposal(task, candidate, around, origin)
        return self._nothing_left(origin)

    def describe(self) -> dict[str, Any]:
        return {"proposer": self.name, "spaces": {t: s.name for t, (s, _) in self._spaces.items()}}
