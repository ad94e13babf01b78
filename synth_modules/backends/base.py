"""The interface every program-writing backend implements (built-in composer and LLM clients alike)."""

from __future__ import annotations

import abc
from typing import Any

from synth_modules.types import Generation, GenerationRequest, Usage


class Backend(abc.ABC):
    """Turns a sampled op pattern into a candidate program.

    `generate` is async so LLM backends can keep many requests in flight while the sandbox validates; CPU-bound
    backends (the composer) simply return. Failures raise `GenerationError` with a category.
    """

    name: str = "base"
    model: str = ""
    supports_repair: bool = False

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest) -> Generation: ...

    def usage(self) -> Usage:
        """Total usage so far (for stats.json)."""
        return Usage()

    def cost_usd(self) -> float:
        """Estimated spend so far; 0 for local backends."""
        return 0.0

    def stats(self) -> dict[str, Any]:
        """Backend counters for stats.json beyond usage and cost (requests, retries, cache hits, cost note)."""
        return {}

    async def aclose(self) -> None:  # noqa: B027 -- optional hook, nothing to release by default
        """Release clients and connections."""
