"""Every strategy's knobs and the tuner's budgets, as frozen dataclasses in one place.

A strategy reads its settings class from here (`SETTINGS[name]`); `Tuner(..., strategy_options={...})`
overrides fields by name and an unknown field is refused with the valid ones listed. `PROFILES` holds the
quick and full budgets the CLI offers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RandomSettings:
    batch_size: int = 4  # configs proposed together (compiled in parallel by batch objectives)


@dataclass(frozen=True)
class GeneticSettings:
    population_size: int = 12
    mutation_rate: float = 0.3  # per-parameter redraw probability of a child
    crossover_rate: float = 0.8  # chance a child comes from two parents rather than one
    elite_count: int = 2  # best configs carried into the next generation unchanged
    tournament_size: int = 3


@dataclass(frozen=True)
class DifferentialEvolutionSettings:
    population_size: int = 10
    differential_weight: float = 0.8  # F in mutant = a + F * (b - c), on parameter indices
    crossover_rate: float = 0.7  # CR of the binomial crossover


@dataclass(frozen=True)
class MCTSSettings:
    exploration: float = 0.3  # UCT constant on rank rewards in [0, 1] (1.0 was near-random on tests)
    batch_size: int = 4  # leaves chosen per round (pending leaves are not chosen twice)


@dataclass(frozen=True)
class PatternSettings:
    start_from_default: bool = True  # first point: every parameter's first value (the space's default)


@dataclass(frozen=True)
class LLMGuidedSettings:
    model_name: str = "gemini-2.5-flash"  # any model_name the project's backends serve (see docs/backends.md)
    base_url: str | None = None  # for model_name=local / local:<model>
    batch_size: int = 6  # configs asked for per request
    top_k: int = 8  # best configs (with scores) shown to the model
    temperature: float = 0.7
    max_tokens: int = 2048
    request_timeout_s: float = 120.0
    cache_dir: str | None = None  # raw answers are cached here (default: a temporary folder)


SETTINGS: dict[str, type] = {
    "random": RandomSettings,
    "ga": GeneticSettings,
    "de": DifferentialEvolutionSettings,
    "mcts": MCTSSettings,
    "pattern": PatternSettings,
    "llm": LLMGuidedSettings,
}


@dataclass(frozen=True)
class TuneBudget:
    """How much a `kernel-search tune` run may spend per task and strategy."""

    max_evaluations: int
    budget_s: float | None  # wall clock for new evaluations; None: unlimited


PROFILES: dict[str, TuneBudget] = {
    "quick": TuneBudget(max_evaluations=16, budget_s=600.0),
    "full": TuneBudget(max_evaluations=40, budget_s=3600.0),
}

# Stop after this many proposals per allowed evaluation even if the budget is not spent: a strategy that only
# re-proposes configs it has already seen (cheap cache hits) or invalid ones must still end.
PROPOSALS_PER_EVALUATION = 25


def build_settings(strategy: str, options: dict[str, Any] | None) -> Any:
    """The strategy's settings with `options` applied; unknown option names are one clear error."""
    cls = SETTINGS[strategy]
    options = dict(options or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(
            f"strategy {strategy!r} has no option {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    settings = cls(**options)
    for f in dataclasses.fields(cls):
        value = getattr(settings, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"strategy {strategy!r} option {f.name} must be >= 0, got {value}")
    return settings
