"""OpenAI-specific behaviour through the real `openai` SDK against the loopback server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from llm_servers import LoopbackLLMServer, Reply, error_reply, program_answer
from test_llm_backends import SAMPLE, VALID, request

from synth_modules.backends.openai_backend import OpenAIBackend
from synth_modules.backends.registry import create_backend
from synth_modules.backends.retry import RetryPolicy
from synth_modules.config import ConfigError, GeneratorConfig
from synth_modules.types import Category, Generation, GenerationError, Sample

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LOCAL_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def run(backend: OpenAIBackend, *samples: Sample) -> list[Generation | BaseException]:
    async def main() -> list[Generation | BaseException]:
        try:
            return await asyncio.gather(
                *(backend.generate(request(sample=s)) for s in samples), return_exceptions=True
            )
        finally:
            await backend.aclose()

    return asyncio.run(main())


def config(tmp_path: Path, **keys: object) -> GeneratorConfig:
    return GeneratorConfig(output_dir=str(tmp_path / "run"), **keys)  # type: ignore[arg-type]


def test_missing_openai_key_is_one_clear_error_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as caught:
        create_backend(config(tmp_path, model_name="gpt-4.1-mini"))
    assert "\n" not in str(caught.value)


def test_local_needs_no_key_and_discovers_the_served_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = Reply(program_answer(VALID, ["Linear", "ReLU"]))
    with LoopbackLLMServer("openai", [answer, answer], models=("Qwen/Qwen2.5-Coder-7B-Instruct",)) as server:
        backend = create_backend(config(tmp_path, model_name="local", base_url=server.openai_base_url))
        assert isinstance(backend, OpenAIBackend) and backend.cost_usd() == 0.0
        samples = [SAMPLE, Sample(1, "s0-0000001", 0, ["Linear"], [], ["ReLU"])]
        results = run(backend, *samples)
        assert all(isinstance(r, Generation) for r in results)
        assert {r.model for r in results if isinstance(r, Generation)} == {"Qwen/Qwen2.5-Coder-7B-Instruct"}
        posts = server.generation_requests
        assert [p.body["model"] for p in posts] == ["Qwen/Qwen2.5-Coder-7B-Instruct"] * 2
        assert posts[0].headers.get("authorization") == "Bearer EMPTY"
        assert len([r for r in server.requests if r.path == "/v1/models"]) == 1  # one shared discovery
        assert backend.stats()["cost_note"].startswith("local server")
    monkeypatch.setenv("LOCAL_LLM_API_KEY", "vllm-secret")
    with LoopbackLLMServer("openai", [answer]) as server:
        backend = create_backend(
            config(tmp_path / "2", model_name="local:test-model", base_url=server.openai_base_url)
        )
        run(backend, SAMPLE)
        assert server.generation_requests[0].headers.get("authorization") == "Bearer vllm-secret"
        assert not [r for r in server.requests if r.path == "/v1/models"]  # named model: no discovery


@pytest.mark.parametrize(
    ("model_name", "api_style", "expected"),
    [
        ("gpt-4o-mini", "chat", {"max_completion_tokens": 4096, "temperature": 0.8}),
        ("o4-mini", "chat", {"max_completion_tokens": 4096}),  # reasoning models refuse a temperature
        ("local:test-model", "chat", {"max_tokens": 4096, "temperature": 0.8}),
        ("local:test-model", "completions", {"max_tokens": 4096, "temperature": 0.8}),
    ],
)
def test_request_body_matches_the_model_family(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_name: str, api_style: str, expected: dict
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with LoopbackLLMServer("openai", [Reply(program_answer(VALID))]) as server:
        keys = dict(model_name=model_name, base_url=server.openai_base_url, api_style=api_style)
        [result] = run(create_backend(config(tmp_path, **keys)), SAMPLE)
        assert isinstance(result, Generation)
        body = server.generation_requests[0].body
        sampling = {k: body[k] for k in ("max_tokens", "max_completion_tokens", "temperature") if k in body}
        assert sampling == expected
        if api_style == "completions":
            assert server.generation_requests[0].path == "/v1/completions"
            assert body["prompt"].startswith("You are an expert PyTorch engineer")  # system text folded in
        else:
            assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_permanent_errors_are_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    quota = Reply(
        text=None,
        status=429,
        body={
            "error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        },
    )
    with LoopbackLLMServer("openai", [error_reply(401), quota]) as server:
        backend = create_backend(config(tmp_path, model_name="gpt-4o-mini", base_url=server.openai_base_url))
        backend.retry_policy = RetryPolicy(max_retries=3, base_delay_s=0.01)
        other = Sample(1, "s0-0000001", 0, ["Linear"], [], ["ReLU"])
        [unauthorized] = run(backend, SAMPLE)
        [no_quota] = run(backend, other)
        assert isinstance(unauthorized, GenerationError) and unauthorized.category == Category.LLM_ERROR
        assert "401" in unauthorized.message and "OPENAI_API_KEY" in unauthorized.message
        assert isinstance(no_quota, GenerationError) and "insufficient_quota" in no_quota.message
        assert len(server.generation_requests) == 2  # one each, no retries
        assert backend.stats()["failed_requests"] == 2


def test_retry_after_ms_is_honoured_and_refusals_are_blocked(tmp_path: Path) -> None:
    refusal = Reply(text=None, body=None)
    with LoopbackLLMServer("openai", [error_reply(429, retry_after_ms="400"), refusal]) as server:
        refusal.body = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        backend = create_backend(
            config(tmp_path, model_name="local:test-model", base_url=server.openai_base_url)
        )
        started = time.monotonic()
        [result] = run(backend, SAMPLE)
        posts = server.generation_requests
        assert posts[1].arrived - posts[0].arrived >= 0.4 and time.monotonic() - started < 10
        assert isinstance(result, GenerationError) and result.category == Category.LLM_ERROR
        assert "blocked" in result.message and "I can't help with that." in result.message
        assert backend.usage().completion_tokens == 5  # refused answers are still billed
