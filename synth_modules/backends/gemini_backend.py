"""Gemini models through the `google-genai` SDK (Gemini Developer API, models/*:generateContent).

Needs GEMINI_API_KEY (or GOOGLE_API_KEY). The endpoint is base_url= when given, else GOOGLE_GEMINI_BASE_URL,
else Google's default: proxies and gateways that speak the Gemini API work the same way.
"""

from __future__ import annotations

import importlib
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
from synth_modules.backends.retry import ErrorInfo, RetryPolicy, parse_retry_after
from synth_modules.config import GeneratorConfig
from synth_modules.types import Usage

_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
_BLOCKING_FINISH = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
}
_DURATION = re.compile(r"^\s*([0-9.]+)\s*s\s*$")


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", value) or "")


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Timeout and connection error classes of whichever HTTP stack google-genai runs on (httpx2, httpx or
    aiohttp, depending on its version and what is installed)."""
    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    try:
        import aiohttp

        timeouts.append(aiohttp.ServerTimeoutError)
        transport.append(aiohttp.ClientConnectionError)
    except ImportError:
        pass
    return tuple(timeouts), tuple(transport)


def retry_delay_from_details(details: Any) -> float | None:
    """Google APIs put the wait in the error body: error.details[] of type google.rpc.RetryInfo, retryDelay "7s"."""
    error = details.get("error", details) if isinstance(details, dict) else None
    entries = error.get("details") if isinstance(error, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and str(entry.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(entry.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


class GeminiBackend(LLMBackend):
    def __init__(self, config: GeneratorConfig, *, retry_policy: RetryPolicy | None = None):
        require_sdk("google.genai", config.model_name)

        self._api_key = api_key_from_env(config.model_name, "a Gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"))
        model = re.sub(r"^(gemini[:/]|models/)", "", config.model_name.strip())
        super().__init__(config, name="gemini", model=model, retry_policy=retry_policy)
        self.base_url = config.base_url or os.environ.get("GOOGLE_GEMINI_BASE_URL") or None

    def _make_client(self) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(
            base_url=self.base_url,
            timeout=int(self.config.request_timeout_s * 1000),  # milliseconds
            retry_options=None,  # retries are ours (synth_modules.backends.retry)
        )
        return genai.Client(api_key=self._api_key, vertexai=False, http_options=options)

    async def _close_client(self, client: Any) -> None:
        await client.aio.aclose()

    async def _send(self, client: Any, prompt: RenderedPrompt) -> Completion:
        from google.genai import types

        response = await client.aio.models.generate_content(
            model=self.model,
            contents=prompt.user,
            config=types.GenerateContentConfig(
                system_instruction=prompt.system or None,
                temperature=self.config.temperature,
                max_output_tokens=self.config.max_tokens,
                candidate_count=1,
            ),
        )
        meta = response.usage_metadata
        usage = Usage(
            prompt_tokens=int(getattr(meta, "prompt_token_count", 0) or 0),
            # thinking tokens are billed as output
            completion_tokens=int(getattr(meta, "candidates_token_count", 0) or 0)
            + int(getattr(meta, "thoughts_token_count", 0) or 0),
            calls=1,
        )
        model = str(getattr(response, "model_version", "") or self.model)
        feedback = getattr(response, "prompt_feedback", None)
        block = _enum_name(getattr(feedback, "block_reason", None))
        if block:
            return Completion("", FINISH_BLOCKED, f"prompt blocked: {block}", usage, model)
        candidate = response.candidates[0] if response.candidates else None
        if candidate is None:
            return Completion("", FINISH_STOP, "no candidates", usage, model)
        parts = (candidate.content.parts if candidate.content else None) or []
        text = "".join(part.text for part in parts if part.text and not part.thought)
        reason = _enum_name(candidate.finish_reason) or "none"
        if reason in _BLOCKING_FINISH:
            finish = FINISH_BLOCKED
        elif reason == "MAX_TOKENS":
            finish = FINISH_LENGTH
        else:
            finish = FINISH_STOP
        return Completion(text, finish, f"finishReason={reason}", usage, model)

    def _classify(self, error: BaseException) -> ErrorInfo | None:
        from google.genai import errors

        if isinstance(error, errors.APIError):
            status = int(error.code or 0)
            message = f"HTTP {status} {error.status or ''}: {error.message or ''}".strip()
            if status in _RETRYABLE_STATUS or status >= 500:
                headers = getattr(getattr(error, "response", None), "headers", None)
                wait = parse_retry_after(headers)
                if wait is None:
                    wait = retry_delay_from_details(error.details)
                return ErrorInfo(True, message, retry_after_s=wait)
            if status in {400, 403} and "API key" in (error.message or ""):
                return ErrorInfo(False, f"{message} (check GEMINI_API_KEY / GOOGLE_API_KEY)")
            return ErrorInfo(False, message)
        timeouts, transport = _transport_errors()
        if isinstance(error, timeouts):
            return ErrorInfo(True, f"request timed out after {self.config.request_timeout_s:g} s")
        if isinstance(error, transport):
            return ErrorInfo(True, f"connection error: {error!r}")
        return None
