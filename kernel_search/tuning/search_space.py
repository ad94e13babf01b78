"""The discrete search space every strategy works on: named parameters, each with a list of allowed values.

Strategies never touch raw dicts: they draw, mutate, cross and list neighbours through `ConfigSpace`, so a
user-defined space (`{"BLOCK": [32, 64], "num_warps": [2, 4, 8]}`) and the built-in Inductor / Triton-launch /
Helion spaces behave the same. A config's identity is its canonical JSON (`key`), which keeps `True` and `1`
apart. Constraints between parameters are a validity predicate; a predicate that raises counts as invalid.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

Config = dict[str, Any]
ValidityPredicate = Callable[[Config], bool]


class SpaceError(ValueError):
    """A malformed config space, refused before any evaluation."""


def config_key(config: Config) -> str:
    """Canonical JSON of a config: the identity used for de-duplication, caching and the database."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class ConfigSpace:
    def __init__(self, parameters: dict[str, list[Any]], is_valid: ValidityPredicate | None = None):
        if not isinstance(parameters, dict) or not parameters:
            raise SpaceError("config_space must be a non-empty dict of parameter name -> list of values")
        for name, values in parameters.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(values, (list, tuple)) or not values:
                raise SpaceError(f"parameter {name!r} needs a non-empty list of values, got {values!r}")
            keys = [json.dumps(v, sort_keys=True, default=str) for v in values]
            if len(set(keys)) != len(keys):
                raise SpaceError(f"parameter {name!r} lists a value twice: {list(values)!r}")
        self.parameters: dict[str, list[Any]] = {name: list(values) for name, values in parameters.items()}
        self.names: list[str] = list(self.parameters)
        self.is_valid_predicate = is_valid

    # ----- size and membership -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of configs before the validity predicate."""
        return math.prod(len(values) for values in self.parameters.values())

    def index_of(self, name: str, value: Any) -> int:
        for index, candidate in enumerate(self.parameters[name]):
            if _same(candidate, value):
                return index
        raise SpaceError(f"{value!r} is not a value of parameter {name!r}")

    def contains(self, config: Any) -> bool:
        """True when `config` names exactly this space's parameters with allowed values."""
        if not isinstance(config, dict) or set(config) != set(self.names):
            return False
        return all(any(_same(v, config[n]) for v in self.parameters[n]) for n in self.names)

    def is_valid(self, config: Config) -> bool:
        """The validity predicate (True without one); a predicate that raises marks the config invalid."""
        if self.is_valid_predicate is None:
            return True
        try:
            return bool(self.is_valid_predicate(config))
        except Exception:
            return False

    def normalize(self, config: Config) -> Config:
        """The config with parameters in the space's order (so keys and prompts read the same)."""
        return {name: config[name] for name in self.names}

    # ----- enumeration and sampling ----------------------------------------------------------------------------
    def all_configs(self) -> Iterator[Config]:
        """Every config in order (parameters varying last-fastest), validity not applied."""
        for values in itertools.product(*self.parameters.values()):
            yield dict(zip(self.names, values, strict=True))

    def random_config(self, rng: random.Random, tries: int = 1000) -> Config:
        """A valid config drawn uniformly per parameter (rejection sampling against the predicate)."""
        for _ in range(tries):
            config = {name: rng.choice(values) for name, values in self.parameters.items()}
            if self.is_valid(config):
                return config
        raise SpaceError(
            f"no valid config found in {tries} random draws; is the validity predicate satisfiable?"
        )

    def default_config(self) -> Config | None:
        """The first value of every parameter, when valid: spaces list a parameter's default first."""
        config = {name: values[0] for name, values in self.parameters.items()}
        return config if self.is_valid(config) else None

    # ----- moves -----------------------------------------------------------------------------------------------
    def neighbours(self, config: Config) -> list[Config]:
        """Every valid config that differs from `config` in exactly one parameter (coordinate moves)."""
        result = []
        for name in self.names:
            for value in self.parameters[name]:
                if not _same(value, config[name]):
                    candidate = {**config, name: value}
                    if self.is_valid(candidate):
                        result.append(candidate)
        return result

    def mutate(self, config: Config, rng: random.Random, rate: float) -> Config:
        """Each parameter is redrawn (to a different value) with probability `rate`; at least one changes."""
        mutable = [name for name in self.names if len(self.parameters[name]) > 1]
        if not mutable:
            return dict(config)
        chosen = [name for name in mutable if rng.random() < rate] or [rng.choice(mutable)]
        result = dict(config)
        for name in chosen:
            others = [v for v in self.parameters[name] if not _same(v, config[name])]
            result[name] = rng.choice(others)
        return result

    def crossover(self, first: Config, second: Config, rng: random.Random) -> Config:
        """Uniform crossover: each parameter from either parent with equal chance."""
        return {name: (first if rng.random() < 0.5 else second)[name] for name in self.names}

    def to_indices(self, config: Config) -> list[int]:
        return [self.index_of(name, config[name]) for name in self.names]

    def from_indices(self, indices: list[float]) -> Config:
        """Decode a (possibly fractional) index vector: rounded and clipped to each parameter's range."""
        config = {}
        for name, raw in zip(self.names, indices, strict=False):
            values = self.parameters[name]
            config[name] = values[min(len(values) - 1, max(0, round(raw)))]
        return config
