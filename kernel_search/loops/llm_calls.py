"""One synchronous LLM call with its bill: the backend's `complete` (cached, paced, retried) on a private event
loop, tagged `<key>/<n>` so a rerun is served from the response cache while repeated prompts in one run still
get their own draws. Tokens and cost are the backend's counters before and after the call (callers make one
call at a time). Used by the LLM proposer and the research pipeline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prompts import RenderedPrompt


class LLMCaller:
    def __init__(self, backend: Any):
        self.backend = backend
        self._loop = asyncio.new_event_loop()
        self._calls: dict[str, int] = {}

    def ask(self, key: str, prompt: RenderedPrompt) -> tuple[str, dict[str, Any]]:
        """(answer text, accounting); the text is "" (or the partial answer) and `error` set when it failed."""
        from synth_modules.types import GenerationError

        number = self._calls.get(key, 0)
        self._calls[key] = number + 1
        before_usage, before_cost = self.backend.usage(), self.backend.cost_usd()
        started = time.monotonic()
        error = ""
        try:
            text = self._loop.run_until_complete(self.backend.complete(prompt, tag=f"{key}/{number}"))
        except GenerationError as failure:
            text, error = failure.response or "", f"llm_error: {failure.message}"
        after = self.backend.usage()
        messages = [{"role": "user", "content": prompt.user}]
        if prompt.system:
            messages.insert(0, {"role": "system", "content": prompt.system})
        messages.append({"role": "assistant", "content": text})
        return text, {
            "messages": messages,
            "prompt_tokens": after.prompt_tokens - before_usage.prompt_tokens,
            "completion_tokens": after.completion_tokens - before_usage.completion_tokens,
            "cost_usd": self.backend.cost_usd() - before_cost,
            "seconds": time.monotonic() - started,
            "error": error,
        }

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.backend.aclose())
            self._loop.close()
