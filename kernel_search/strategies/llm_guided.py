"""LLM-guided evolution: the model sees the space and the best configs with their scores, and proposes a batch.

Requests go through the project's own backends (`synth_modules.backends`: Gemini, OpenAI, local servers), so
caching, pacing, retries and key handling are theirs; the wording is `prompts/tune_configs.toml`. Proposals
outside the space, invalid, already seen or repeated are dropped and the batch is topped up with random
configs. Without a usable backend (no API key, no server) the strategy says so once and searches at random.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import tempfile
from typing import Any

from kernel_search.strategies.base import SearchStrategy
from kernel_search.tuning.search_space import Config, config_key
from prompts import load_prompt

log = logging.getLogger("kernel_search")

_JSON_BLOCK = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def parse_configs(text: str) -> list[Any]:
    """The JSON array in the answer's fenced block (or the first top-level array in it); [] when none parses."""
    candidates = [m.group(1) for m in _JSON_BLOCK.finditer(text)]
    start, end = text.find("["), text.rfind("]")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for chunk in candidates:
        try:
            value = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(value, dict):
            value = [value]
        if isinstance(value, list):
            return value
    return []


class LLMGuidedSearch(SearchStrategy):
    name = "llm"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.goal = "Maximize the measured score of the kernel (speedup)."
        self.backend: Any = None
        self.fallback_reason = ""
        self.counts = {
            "requests": 0,
            "llm_configs": 0,
            "dropped": 0,
            "random_configs": 0,
            "failed_requests": 0,
        }
        self._round = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._temp_cache: tempfile.TemporaryDirectory | None = None
        self._connect()

    def _connect(self) -> None:
        from synth_modules.backends.registry import create_backend
        from synth_modules.config import ConfigError, GeneratorConfig

        settings = self.settings
        cache_dir = settings.cache_dir
        if cache_dir is None:
            self._temp_cache = tempfile.TemporaryDirectory(prefix="kernel-search-llm-")
            cache_dir = self._temp_cache.name
        config = GeneratorConfig(
            model_name=settings.model_name,
            base_url=settings.base_url,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            request_timeout_s=settings.request_timeout_s,
            cache_dir=cache_dir,
            output_dir=cache_dir,
            max_retries=0,
        )
        try:
            backend = create_backend(config)
        except ConfigError as error:
            self._fall_back(str(error))
            return
        if not hasattr(backend, "complete"):
            self._fall_back(f"model_name={settings.model_name} is not an LLM backend")
            return
        self.backend = backend
        self._loop = asyncio.new_event_loop()

    def _fall_back(self, reason: str) -> None:
        self.fallback_reason = reason
        log.warning("LLM-guided search falls back to random search: %s", reason)

    # ----- proposing -------------------------------------------------------------------------------------------
    def propose(self) -> list[Config]:
        count = max(1, self.settings.batch_size)
        batch: list[Config] = []
        keys: set[str] = set()
        if self.backend is not None:
            for raw in self._ask(count):
                if (
                    len(batch) < count
                    and self.space.contains(raw)
                    and self.space.is_valid(raw)
                    and not self.seen(raw)
                    and config_key(raw) not in keys
                ):
                    config = self.space.normalize(raw)
                    keys.add(config_key(config))
                    batch.append(config)
                    self.counts["llm_configs"] += 1
                else:
                    self.counts["dropped"] += 1
        while len(batch) < count:
            config = self.fresh_random(avoid=keys)
            keys.add(config_key(config))
            batch.append(config)
            self.counts["random_configs"] += 1
        return batch

    def _ask(self, count: int) -> list[Any]:
        from synth_modules.types import GenerationError

        self._round += 1
        prompt = self.render_prompt(count)
        self.counts["requests"] += 1
        try:
            assert self._loop is not None
            text = self._loop.run_until_complete(
                self.backend.complete(prompt, tag=f"tune-round-{self._round}")
            )
        except GenerationError as error:
            self.counts["failed_requests"] += 1
            log.warning("LLM-guided search: request %d failed (%s); this batch is random", self._round, error)
            return []
        proposals = parse_configs(text)
        if not proposals:
            log.warning(
                "LLM-guided search: answer %d held no JSON array of configs; this batch is random",
                self._round,
            )
        return proposals

    def render_prompt(self, count: int):
        template = load_prompt("tune_configs")
        scored = [(key, score) for key, score in self.scores.items() if math.isfinite(score)]
        scored.sort(key=lambda item: item[1], reverse=True)
        best = [
            json.dumps({"config": json.loads(key), "score": round(score, 6)})
            for key, score in scored[: self.settings.top_k]
        ]
        failed = [key for key, score in self.scores.items() if not math.isfinite(score)][
            -self.settings.top_k :
        ]
        none = template.fragment("none")
        return template.render(
            goal=self.goal,
            space=json.dumps(self.space.parameters),
            count=str(count),
            evaluated=str(len(self.scores)),
            best="\n".join(best) or none,
            failures="\n".join(failed) or none,
        )

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(self.counts, fallback_reason=self.fallback_reason)
        return info

    def close(self) -> None:
        if self._loop is not None:
            if self.backend is not None:
                self._loop.run_until_complete(self.backend.aclose())
            self._loop.close()
            self._loop = None
        if self._temp_cache is not None:
            self._temp_cache.cleanup()
            self._temp_cache = None
