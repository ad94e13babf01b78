"""Gemini-specific behaviour through the real `google-genai` SDK against the loopback server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from llm_servers import LoopbackLLMServer, Reply, program_answer
from test_llm_backends import VALID, request

from synth_modules.backends.gemini_backend import GeminiBackend, retry_delay_from_details
from synth_modules.backends.registry import create_backend
from synth_modules.config import ConfigError, GeneratorConfig
from synth_modules.types import Category, Generation, GenerationError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)


def run_one(backend: GeminiBackend) -> Generation | BaseException:
    async def main() -> Generation | BaseException:
        try:
            return (await asyncio.gather(backend.generate(request()), return_exceptions=True))[0]
        finally:
            await backend.aclose()

    return asyncio.run(main())


def test_missing_gemini_key_is_one_clear_error_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GEMINI_API_KEY") as caught:
        create_backend(GeneratorConfig(model_name="gemini-2.5-flash", output_dir=str(tmp_path)))
    assert "\n" not in str(caught.value)


def test_google_api_key_and_base_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    with LoopbackLLMServer("gemini", [Reply(program_answer(VALID, ["Linear", "ReLU"]))]) as server:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
        backend = create_backend(
            GeneratorConfig(model_name="models/gemini-2.5-pro", output_dir=str(tmp_path))
        )
        assert isinstance(backend, GeminiBackend) and backend.model == "gemini-2.5-pro"
        result = run_one(backend)
        assert isinstance(result, Generation) and result.final_pattern == ["Linear", "ReLU"]
        [post] = server.generation_requests
        assert post.path.endswith("/models/gemini-2.5-pro:generateContent")
        assert post.headers.get("x-goog-api-key") == "google-key"
        assert post.body["systemInstruction"]["parts"][0]["text"].startswith(
            "You are an expert PyTorch engineer"
        )
        assert post.body["generationConfig"]["maxOutputTokens"] == 4096
        assert post.body["generationConfig"]["temperature"] == 0.8


def test_retry_info_in_the_error_body_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    details = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}],
        }
    }
    assert retry_delay_from_details(details) == 1.0
    script = [Reply(text=None, status=429, body=details), Reply(program_answer(VALID))]
    with LoopbackLLMServer("gemini", script) as server:
        backend = create_backend(
            GeneratorConfig(model_name="gemini-2.5-flash", base_url=server.url, output_dir=str(tmp_path))
        )
        started = time.monotonic()
        assert isinstance(run_one(backend), Generation)
        first, second = server.generation_requests
        assert second.arrived - first.arrived >= 1.0 and time.monotonic() - started < 10
        assert backend.stats()["retry_reasons"] == {"HTTP 429 RESOURCE_EXHAUSTED": 1}


def test_thinking_is_billed_but_not_parsed_and_safety_stops_are_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    thinking = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "```python\nclass Draft(nn.Module): pass\n```", "thought": True},
                        {"text": program_answer(VALID, ["Linear", "ReLU"])},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 60, "thoughtsTokenCount": 500},
        "modelVersion": "gemini-2.5-flash-001",
    }
    safety = {
        "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "SAFETY"}],
        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 0},
    }
    script = [Reply(text=None, body=thinking), Reply(text=None, body=safety)]
    with LoopbackLLMServer("gemini", script) as server:
        keys = dict(model_name="gemini-2.5-flash", base_url=server.url, output_dir=str(tmp_path))
        backend = create_backend(GeneratorConfig(**keys))
        result = run_one(backend)
        assert isinstance(result, Generation) and "Draft" not in result.source
        assert result.model == "gemini-2.5-flash-001"
        assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (40, 560)
        blocked = run_one(create_backend(GeneratorConfig(**{**keys, "output_dir": str(tmp_path / "2")})))
        assert isinstance(blocked, GenerationError) and blocked.category == Category.LLM_ERROR
        assert "blocked" in blocked.message and "SAFETY" in blocked.message
