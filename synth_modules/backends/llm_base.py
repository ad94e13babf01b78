"""What every LLM backend shares: prompts, the response cache, pacing, retries, answer checks and accounting.

A provider backend only speaks its wire protocol (`_send`: one request -> Completion) and says which of its
SDK's errors are transient (`_classify`). Everything else lives here once, so OpenAI, local servers and Gemini
behave the same way.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from prompts import RenderedPrompt
from synth_modules.backends.base import Backend
from synth_modules.backends.parsing import extract_program
from synth_modules.backends.pricing import CostEstimate, estimate_cost
from synth_modules.backends.prompting import build_prompt
from synth_modules.backends.rate_limit import RequestLimiter
from synth_modules.backends.response_cache import ResponseCache, cache_key, default_cache_dir
from synth_modules.backends.retry import ErrorInfo, RequestFailed, RetryPolicy, call_with_retries
from synth_modules.config import ConfigError, GeneratorConfig
from synth_modules.types import Category, Generation, GenerationError, GenerationRequest, Usage


def api_key_from_env(model_name: str, provider: str, names: tuple[str, ...], hint: str = "") -> str:
    """The first non-empty key among `names` in the environment; none is one clear error before any work.

    `provider` reads in the message as written ("an OpenAI", "a Gemini"); `hint` follows it verbatim.
    """
    for name in names:
        key = os.environ.get(name, "").strip()
        if key:
            return key
    where = names[0] + "".join(f" (or {name})" for name in names[1:])
    raise ConfigError(
        f"model_name={model_name} needs {provider} API key: set {where} in the environment{hint}"
    )


FINISH_STOP = "stop"
FINISH_LENGTH = "length"  # cut off at max_tokens
FINISH_BLOCKED = "blocked"  # refused or filtered by the provider


def require_sdk(module: str, model_name: str) -> None:
    """Fail at start-up, in one sentence, when the provider SDK is not installed."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"model_name={model_name} needs the {module} package: pip install 'synth-torch[llm]'"
        ) from None


@dataclass
class Completion:
    """One raw answer, normalized across providers (this is what the response cache stores)."""

    text: str
    finish: str
    finish_detail: str = ""  # the provider's own wording of the finish reason, for messages
    usage: Usage = field(default_factory=Usage)
    model: str = ""

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Completion:
        return cls(
            text=str(record.get("text") or ""),
            finish=str(record.get("finish") or FINISH_STOP),
            finish_detail=str(record.get("finish_detail") or ""),
            usage=Usage(**record.get("usage", {})),
            model=str(record.get("model") or ""),
        )


class LLMBackend(Backend):
    supports_repair = True
    local = False  # local servers cost nothing

    def __init__(
        self,
        config: GeneratorConfig,
        *,
        name: str,
        model: str,
        retry_policy: RetryPolicy | None = None,
    ):
        self.config = config
        self.name = name
        self.model = model
        self.retry_policy = retry_policy or RetryPolicy()
        self.limiter = RequestLimiter(config.max_concurrency, config.requests_per_minute)
        self.cache = ResponseCache(default_cache_dir(config))
        self._usage = Usage()
        self._counts: Counter[str] = Counter()  # requests, retries, cache hits, failures
        self._retry_reasons: Counter[str] = Counter()
        self._saved = Usage()  # tokens that cache hits did not pay for again
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._client_obj: Any = None

    # ----- what a provider implements ------------------------------------------------------------------------
    @abc.abstractmethod
    def _make_client(self) -> Any:
        """A new SDK client (called once per event loop: SDK HTTP pools belong to the loop that made them)."""

    @abc.abstractmethod
    async def _send(self, client: Any, prompt: RenderedPrompt) -> Completion:
        """One request, no retries; raise the SDK's own exceptions."""

    @abc.abstractmethod
    def _classify(self, error: BaseException) -> ErrorInfo | None:
        """Describe an SDK error (retryable or not); None for anything that is not a provider failure."""

    async def _prepare(self) -> None:
        """Work needed once before the first request (e.g. asking a local server which model it serves)."""

    @property
    def _cache_backend_label(self) -> str:
        return self.name

    # ----- shared machinery ----------------------------------------------------------------------------------
    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client_obj is None or self._client_loop is not loop:
            self._client_obj = self._make_client()
            self._client_loop = loop
        return self._client_obj

    def _classify_any(self, error: BaseException) -> ErrorInfo | None:
        if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
            return ErrorInfo(True, f"request timed out after {self.config.request_timeout_s:g} s")
        return self._classify(error)

    def _on_retry(self, info: ErrorInfo, delay_s: float) -> None:
        self._counts["retries"] += 1
        self._retry_reasons[info.description.split(":")[0][:80]] += 1

    async def _request(self, call_name: str, send: Any) -> Any:
        """Run `send(client)` under the concurrency slot, the rpm pace, the timeout and the retry policy."""

        async def attempt() -> Any:
            await self.limiter.pace()
            self._counts["requests"] += 1
            return await asyncio.wait_for(send(self._client()), self.config.request_timeout_s)

        async with self.limiter.slot():
            try:
                return await call_with_retries(
                    attempt, self._classify_any, self.retry_policy, on_retry=self._on_retry
                )
            except RequestFailed as failure:
                self._counts["failed_requests"] += 1
                raise GenerationError(
                    Category.LLM_ERROR, f"{self.name} {call_name} failed: {failure.message}"
                ) from failure

    async def generate(self, request: GenerationRequest) -> Generation:
        await self._prepare()
        prompt = build_prompt(request)
        key = cache_key(
            backend=self._cache_backend_label,
            model=self.model,
            prompt=prompt.text,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            sample_id=request.sample.id,
            attempt=request.attempt,
        )
        record = self.cache.get(key)
        if record is not None:
            completion = Completion.from_record(record)
            self._counts["cache_hits"] += 1
            self._saved.add(completion.usage)
            usage = Usage()
        else:
            completion = await self._request("request", lambda client: self._send(client, prompt))
            self._usage.add(completion.usage)
            self.cache.put(key, completion.to_record())
            usage = completion.usage
        return self._to_generation(request, prompt, completion, usage, cached=record is not None)

    async def complete(self, prompt: RenderedPrompt, *, tag: str) -> str:
        """One free-form answer (cached, paced and retried like `generate`) for callers that parse it themselves,
        e.g. the kernel-search LLM strategy; `tag` tells apart requests whose prompts are identical."""
        await self._prepare()
        key = cache_key(
            backend=self._cache_backend_label,
            model=self.model,
            prompt=prompt.text,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            sample_id=tag,
            attempt=0,
        )
        record = self.cache.get(key)
        if record is not None:
            self._counts["cache_hits"] += 1
            completion = Completion.from_record(record)
        else:
            completion = await self._request("request", lambda client: self._send(client, prompt))
            self._usage.add(completion.usage)
            self.cache.put(key, completion.to_record())
        if completion.finish == FINISH_BLOCKED or not completion.text.strip():
            reason = completion.finish_detail or completion.finish
            raise GenerationError(
                Category.LLM_ERROR, f"no usable answer ({reason})", response=completion.text
            )
        return completion.text

    def _to_generation(
        self,
        request: GenerationRequest,
        prompt: RenderedPrompt,
        completion: Completion,
        usage: Usage,
        cached: bool,
    ) -> Generation:
        """Check the answer (blocked, empty, truncated, code-less) and extract the program."""
        text = completion.text
        reason = completion.finish_detail or completion.finish
        if completion.finish == FINISH_BLOCKED:
            raise GenerationError(
                Category.LLM_ERROR, f"the answer was blocked by the provider ({reason})", usage, text
            )
        if not text.strip():
            raise GenerationError(Category.LLM_ERROR, f"empty answer (finish reason: {reason})", usage, text)
        truncated = completion.finish == FINISH_LENGTH
        try:
            source, pattern = extract_program(
                text, request.entry_point, request.sample.sampled_ops, require_closed=truncated
            )
        except GenerationError as error:
            message = error.message
            if truncated:
                message = (
                    f"the answer was cut off at max_tokens={self.config.max_tokens} ({message}); "
                    "raise max_tokens"
                )
            raise GenerationError(error.category, message, usage, text) from None
        return Generation(
            source=source,
            entry_point=request.entry_point,
            final_pattern=pattern,
            backend=self.name,
            model=completion.model or self.model,
            prompt_sha256=prompt.sha256,
            prompt=prompt.text,
            response=text,
            usage=usage,
            cached=cached,
        )

    # ----- accounting ----------------------------------------------------------------------------------------
    def usage(self) -> Usage:
        total = Usage()
        total.add(self._usage)
        return total

    def cost_estimate(self) -> CostEstimate:
        return estimate_cost(self.model, self._usage, local=self.local)

    def cost_usd(self) -> float:
        return self.cost_estimate().usd

    def stats(self) -> dict[str, Any]:
        cost = self.cost_estimate()
        return {
            "backend": self.name,
            "model": self.model,
            "requests": self._counts["requests"],
            "retries": self._counts["retries"],
            "retry_reasons": dict(self._retry_reasons),
            "failed_requests": self._counts["failed_requests"],
            "cache_hits": self._counts["cache_hits"],
            "cache_saved_tokens": self._saved.prompt_tokens + self._saved.completion_tokens,
            "cache_dir": str(self.cache.directory),
            "prompt_tokens": self._usage.prompt_tokens,
            "completion_tokens": self._usage.completion_tokens,
            "calls": self._usage.calls,
            "cost_usd": round(cost.usd, 6),
            "cost_priced": cost.priced,
            "cost_note": cost.note,
        }

    async def aclose(self) -> None:
        client, self._client_obj = self._client_obj, None
        if client is None or self._client_loop is not asyncio.get_running_loop():
            return
        await self._close_client(client)

    async def _close_client(self, client: Any) -> None:
        """Release the SDK client's connections."""
