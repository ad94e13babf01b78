"""Search strategies, by name. A plain dict is the registry; `create_strategy` refuses unknown names."""

from __future__ import annotations

from random import Random

from kernel_search.strategies.base import FAILURE, SearchStrategy
from kernel_search.strategies.differential_evolution import DifferentialEvolution
from kernel_search.strategies.genetic import GeneticSearch
from kernel_search.strategies.llm_guided import LLMGuidedSearch
from kernel_search.strategies.mcts import MonteCarloTreeSearch
from kernel_search.strategies.pattern import PatternSearch
from kernel_search.strategies.random import RandomSearch
from kernel_search.tuning.search_space import ConfigSpace
from kernel_search.tuning.settings import build_settings

STRATEGIES: dict[str, type[SearchStrategy]] = {
    "random": RandomSearch,
    "ga": GeneticSearch,
    "de": DifferentialEvolution,
    "mcts": MonteCarloTreeSearch,
    "pattern": PatternSearch,
    "llm": LLMGuidedSearch,
}

__all__ = ["FAILURE", "STRATEGIES", "SearchStrategy", "create_strategy"]


def create_strategy(name: str, space: ConfigSpace, seed: int, options: dict | None = None) -> SearchStrategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](space, Random(seed), build_settings(name, options))
