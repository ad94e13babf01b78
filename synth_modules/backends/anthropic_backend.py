"""Anthropic Claude models through the `anthropic` SDK (the Messages API, POST /v1/messages).

model_name: `claude-...` or `anthropic:<name>`; needs ANTHROPIC_API_KEY. The endpoint is base_url= when given
(a gateway speaking the Messages API), else ANTHROPIC_BASE_URL, else Anthropic's default.
"""

from __future__ import annotations

import os
import re
from typing import Any

from prompts import RenderedPrompt
from synth_modules.backends.llm_base import (
    FINISH_BLOCKED,
    FINISH_LENGTH,
    FINISH_STOP,
    Completion,
    LLMBackend,
    api_key_from_env,
    require_sdk,
)
from synth_modules.backends.retry import ErrorInfo, RetryPolicy
from synth_modules.backends.sdk_errors import body_message, classify_sdk_error
from synth_modules.config import GeneratorConfig
from synth_modules.types import Usage

# 529 is Anthropic's "overloaded": transient, like a 503.
_RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}


class AnthropicBackend(LLMBackend):
    def __init__(self, config: GeneratorConfig, *, retry_policy: RetryPolicy | None = None):
        require_sdk("anthropic", config.model_name)
        self._api_key = api_key_from_env(config.model_name, "an Anthropic", ("ANTHROPIC_API_KEY",))
        model = re.sub(r"^anthropic[:/]", "", config.model_name.strip())
        super().__init__(config, name="anthropic", model=model, retry_policy=retry_policy)
        self.base_url = config.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None

    def _make_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.config.request_timeout_s,
            max_retries=0,  # retries are ours (synth_modules.backends.retry)
        )

    async def _close_client(self, client: Any) -> None:
        await client.close()

    async def _send(self, client: Any, prompt: RenderedPrompt) -> Completion:
        extra: dict[str, Any] = {"system": prompt.system} if prompt.system else {}
        # No temperature: current SDKs (and Claude's newest models) take none, so the model's default is used.
        response = await client.messages.create(
            model=self.model,
            max_tokens=self.config.max_tokens,
            messages=[{"role": "user", "content": prompt.user}],
            **extra,
        )
        # Extended thinking comes back as `thinking` blocks: only the text blocks are the answer.
        text = "".join(block.text for block in response.content if getattr(block, "type", "") == "text")
        reason = str(response.stop_reason or "none")
        if reason == "refusal":
            finish = FINISH_BLOCKED
        elif reason == "max_tokens":
            finish = FINISH_LENGTH
        else:
            finish = FINISH_STOP
        usage = response.usage
        return Completion(
            text=text,
            finish=finish,
            finish_detail=f"stop_reason={reason}",
            usage=Usage(
                # cached prompt tokens are billed too (at other rates; counted as input here)
                prompt_tokens=int(getattr(usage, "input_tokens", 0) or 0)
                + int(getattr(usage, "cache_read_input_tokens", 0) or 0)
                + int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "output_tokens", 0) or 0),
                calls=1,
            ),
            model=str(response.model or self.model),
        )

    def _classify(self, error: BaseException) -> ErrorInfo | None:
        import anthropic

        return classify_sdk_error(
            anthropic,
            error,
            timeout_s=self.config.request_timeout_s,
            retryable_status=_RETRYABLE_STATUS,
            key_env="ANTHROPIC_API_KEY",
            model=self.model,
            message=lambda e: body_message(e, with_kind=True),
        )
