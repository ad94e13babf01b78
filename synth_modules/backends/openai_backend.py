"""OpenAI models and any OpenAI-compatible server (vLLM, SGLang, llama.cpp, ollama) through the `openai` SDK.

model_name: an OpenAI model (`gpt-4.1-mini`, `o4-mini`, `openai:<name>`; needs OPENAI_API_KEY) or `local` /
`local:<served-model>` with base_url=http://host:port/v1 (no key needed; LOCAL_LLM_API_KEY is sent when set,
for servers started with --api-key). api_style=chat uses /chat/completions, api_style=completions uses
/completions with the system and user prompts joined. xAI's Grok models (`grok-...`, `xai:<name>`; needs
XAI_API_KEY) speak the same API at https://api.x.ai/v1 (or base_url=), so they are served here too.
"""

from __future__ import annotations

import asyncio
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
from synth_modules.backends.model_names import resolve_backend_kind
from synth_modules.backends.retry import ErrorInfo, RetryPolicy
from synth_modules.backends.sdk_errors import body_message, classify_sdk_error
from synth_modules.config import ConfigError, GeneratorConfig
from synth_modules.types import Category, GenerationError, Usage

# Reasoning models take max_completion_tokens and refuse a temperature other than the default.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5(?!-chat))")
_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
XAI_BASE_URL = "https://api.x.ai/v1"


class OpenAIBackend(LLMBackend):
    def __init__(self, config: GeneratorConfig, *, retry_policy: RetryPolicy | None = None):
        require_sdk("openai", config.model_name)

        kind = resolve_backend_kind(config.model_name)
        self.local = kind == "local"
        self.xai = kind == "xai"
        raw = config.model_name.strip()
        base_url = config.base_url
        if self.xai:
            model = re.sub(r"^xai[:/]", "", raw)
            self._api_key = api_key_from_env(raw, "an xAI", ("XAI_API_KEY",))
            base_url = base_url or XAI_BASE_URL
        elif self.local:
            if not config.base_url:
                raise ConfigError(
                    "model_name=local needs base_url=http://host:port/v1 (an OpenAI-compatible server)"
                )
            model = raw.split(":", 1)[1].strip() if ":" in raw else ""
            self._api_key = os.environ.get("LOCAL_LLM_API_KEY") or "EMPTY"
        else:
            model = re.sub(r"^openai[:/]", "", raw)
            self._api_key = api_key_from_env(
                raw,
                "an OpenAI",
                ("OPENAI_API_KEY",),
                " (or use model_name=local with base_url= for an OpenAI-compatible server)",
            )
        name = "local" if self.local else "xai" if self.xai else "openai"
        super().__init__(config, name=name, model=model, retry_policy=retry_policy)
        self.api_style = config.api_style
        self.base_url = base_url
        self._discovery: asyncio.Future[str] | None = None

    @property
    def _cache_backend_label(self) -> str:
        return f"{self.name}/{self.api_style}"

    def _make_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url or None,  # None: the SDK default (which honours OPENAI_BASE_URL)
            timeout=self.config.request_timeout_s,
            max_retries=0,  # retries are ours (synth_modules.backends.retry)
        )

    async def _close_client(self, client: Any) -> None:
        await client.close()

    async def _prepare(self) -> None:
        """`local` without a model name: ask the server what it serves (vLLM and friends serve one model).
        Concurrent first requests share one discovery; a failed one is tried again by the next request."""
        if self.model:
            return
        task = self._discovery
        if (
            task is None
            or task.get_loop() is not asyncio.get_running_loop()
            or (task.done() and (task.cancelled() or task.exception() is not None))
        ):
            task = self._discovery = asyncio.ensure_future(self._discover_model())
        self.model = await asyncio.shield(task)

    async def _discover_model(self) -> str:
        async def list_models(client: Any) -> list[str]:
            page = await client.models.list()
            return [item.id for item in page.data]

        served = await self._request("model listing (GET /models)", list_models)
        if not served:
            raise GenerationError(
                Category.LLM_ERROR,
                f"the server at {self.base_url} lists no models; use model_name=local:<model>",
            )
        return str(served[0])

    def _sampling_args(self) -> dict[str, Any]:
        if self.local or self.xai or self.api_style == "completions":
            return {"max_tokens": self.config.max_tokens, "temperature": self.config.temperature}
        if _REASONING_MODEL.match(self.model):
            return {"max_completion_tokens": self.config.max_tokens}
        return {"max_completion_tokens": self.config.max_tokens, "temperature": self.config.temperature}

    async def _send(self, client: Any, prompt: RenderedPrompt) -> Completion:
        if self.api_style == "completions":
            response = await client.completions.create(
                model=self.model, prompt=prompt.text, n=1, **self._sampling_args()
            )
            choice = response.choices[0] if response.choices else None
            text = (choice.text if choice else "") or ""
            refusal = None
        else:
            messages = [{"role": "user", "content": prompt.user}]
            if prompt.system:
                messages.insert(0, {"role": "system", "content": prompt.system})
            response = await client.chat.completions.create(
                model=self.model, messages=messages, n=1, **self._sampling_args()
            )
            choice = response.choices[0] if response.choices else None
            message = choice.message if choice else None
            text = (message.content if message else "") or ""
            refusal = getattr(message, "refusal", None) if message else None
        reason = str(choice.finish_reason) if choice and choice.finish_reason else "none"
        if refusal or reason == "content_filter":
            finish, detail = FINISH_BLOCKED, f"finish_reason={reason}" + (f": {refusal}" if refusal else "")
        elif reason == "length":
            finish, detail = FINISH_LENGTH, "finish_reason=length"
        else:
            finish, detail = FINISH_STOP, f"finish_reason={reason}"
        usage = response.usage
        return Completion(
            text=text,
            finish=finish,
            finish_detail=detail,
            usage=Usage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                calls=1,
            ),
            model=str(response.model or self.model),
        )

    def _classify(self, error: BaseException) -> ErrorInfo | None:
        import openai

        if (
            isinstance(error, openai.APIStatusError)
            and error.status_code == 429
            and getattr(error, "code", None) == "insufficient_quota"
        ):  # a 429 that waiting does not cure
            return ErrorInfo(False, f"HTTP 429 insufficient_quota: {body_message(error)}")
        who = "LOCAL_LLM_API_KEY" if self.local else "XAI_API_KEY" if self.xai else "OPENAI_API_KEY"
        return classify_sdk_error(
            openai,
            error,
            timeout_s=self.config.request_timeout_s,
            retryable_status=_RETRYABLE_STATUS,
            key_env=who,
            model=self.model,
        )
