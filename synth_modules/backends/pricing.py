"""Estimated spend: token counts times a small per-model-family price table (synth_modules/data/llm_prices.toml)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from synth_modules.types import Usage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class Price:
    family: str
    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class CostEstimate:
    usd: float
    priced: bool
    note: str


@lru_cache(maxsize=1)
def price_table() -> dict[str, Price]:
    text = resources.files("synth_modules").joinpath("data/llm_prices.toml").read_text(encoding="utf-8")
    table: dict[str, Price] = {}
    for family, models in tomllib.loads(text).items():
        for prefix, entry in models.items():
            table[prefix.lower()] = Price(family, float(entry["input"]), float(entry["output"]))
    return table


def lookup_price(model: str) -> Price | None:
    """The entry whose key is the longest prefix of the model name."""
    name = model.strip().lower().removeprefix("models/")
    matches = [prefix for prefix in price_table() if name.startswith(prefix)]
    return price_table()[max(matches, key=len)] if matches else None


def estimate_cost(model: str, usage: Usage, *, local: bool = False) -> CostEstimate:
    if local:
        return CostEstimate(0.0, True, "local server: no per-token cost")
    price = lookup_price(model)
    if price is None:
        return CostEstimate(
            0.0, False, f"no price known for model {model!r}: cost reported as 0 (add it to llm_prices.toml)"
        )
    usd = (usage.prompt_tokens * price.input_per_mtok + usage.completion_tokens * price.output_per_mtok) / 1e6
    return CostEstimate(
        usd,
        True,
        f"estimate at {price.input_per_mtok}/{price.output_per_mtok} USD per 1M input/output tokens",
    )
