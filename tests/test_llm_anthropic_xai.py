"""Anthropic (Messages API, `anthropic` SDK) and xAI Grok (OpenAI-compatible) specifics against loopback servers.

The shared behaviour (retries, cache, cost, limits, categorization) is covered for both in test_llm_backends.py;
here: routing, keys, request bodies, Anthropic's 529 and refusals, and xAI's default endpoint.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llm_servers import LoopbackLLMServer, Reply, error_reply, program_answer
from test_llm_backends import SAMPLE, VALID, request

from synth_modules.backends.anthropic_backend import AnthropicBackend
from synth_modules.backends.llm_base import LLMBackend
from synth_modules.backends.model_names import resolve_backend_kind
from synth_modules.backends.openai_backend import XAI_BASE_URL, OpenAIBackend
from synth_modules.backends.registry import create_backend
from synth_modules.backends.retry import RetryPolicy
from synth_modules.config import ConfigError, GeneratorConfig
from synth_modules.types import Generation, GenerationError

pytestmark = pytest.mark.timeout(60)
FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "XAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def config(tmp_path: Path, **keys: object) -> GeneratorConfig:
    return GeneratorConfig(output_dir=str(tmp_path / "run"), **keys)  # type: ignore[arg-type]


def generate_one(backend: LLMBackend) -> Generation | BaseException:
    async def main() -> Generation | BaseException:
        try:
            return (await asyncio.gather(backend.generate(request()), return_exceptions=True))[0]
        finally:
            await backend.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("claude-sonnet-4-5", "anthropic"),
        ("anthropic:claude-opus-4-1", "anthropic"),
        ("grok-4", "xai"),
        ("xai:grok-code-fast-1", "xai"),
        ("claudius", None),
    ],
)
def test_model_names_route_to_their_provider(name: str, kind: str | None) -> None:
    assert resolve_backend_kind(name) == kind


def test_missing_keys_are_one_clear_error_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY") as anthropic_error:
        create_backend(config(tmp_path, model_name="claude-haiku-4-5"))
    with pytest.raises(ConfigError, match="XAI_API_KEY") as xai_error:
        create_backend(config(tmp_path, model_name="grok-4"))
    assert "\n" not in str(anthropic_error.value) + str(xai_error.value)
    with pytest.raises(ConfigError, match="claude-"):  # the unknown-name message lists the new families
        create_backend(config(tmp_path, model_name="llama-3"))


def test_anthropic_request_carries_key_version_system_and_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    answer = Reply(program_answer(VALID, ["Linear", "ReLU"]), prompt_tokens=70, completion_tokens=30)
    with LoopbackLLMServer("anthropic", [answer]) as server:
        backend = create_backend(
            config(tmp_path, model_name="anthropic:claude-sonnet-4-5", base_url=server.url)
        )
        assert isinstance(backend, AnthropicBackend) and backend.model == "claude-sonnet-4-5"
        result = generate_one(backend)
        [posted] = server.generation_requests
    assert isinstance(result, Generation) and result.backend == "anthropic"
    assert posted.path == "/v1/messages"
    # older SDKs send x-api-key, newer ones a bearer token: either way the key is the one from the environment
    sent_key = posted.headers.get("x-api-key") or posted.headers.get("authorization", "").removeprefix(
        "Bearer "
    )
    assert sent_key == "sk-ant-secret" and "anthropic-version" in posted.headers
    assert posted.body["model"] == "claude-sonnet-4-5" and posted.body["max_tokens"] == 4096
    assert (
        isinstance(posted.body["system"], str) and posted.body["system"]
    )  # system prompt beside the messages
    assert [m["role"] for m in posted.body["messages"]] == ["user"]
    assert backend.cost_usd() == pytest.approx((70 * 3.0 + 30 * 15.0) / 1e6)


def test_anthropic_overloaded_529_is_retried_and_refusal_is_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    script = [
        error_reply(529),
        Reply(program_answer(VALID, ["Linear"])),
        Reply("I can't help.", finish="blocked"),
    ]
    with LoopbackLLMServer("anthropic", script) as server:
        backend = create_backend(config(tmp_path, model_name="claude-haiku-4-5", base_url=server.url))
        assert isinstance(backend, LLMBackend)
        backend.retry_policy = FAST
        assert isinstance(generate_one(backend), Generation)
        assert backend.stats()["retries"] == 1 and backend.stats()["retry_reasons"] == {"HTTP 529": 1}
        backend.config.cache_dir = str(tmp_path / "other-cache")  # a fresh draw, not the cached answer
        backend.cache.directory = tmp_path / "other-cache"
        refused = generate_one(backend)
    assert isinstance(refused, GenerationError) and "blocked" in refused.message
    assert "stop_reason=refusal" in refused.message


def test_anthropic_401_is_not_retried_and_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    with LoopbackLLMServer("anthropic", [error_reply(401)]) as server:
        backend = create_backend(config(tmp_path, model_name="claude-haiku-4-5", base_url=server.url))
        assert isinstance(backend, LLMBackend)
        backend.retry_policy = FAST
        result = generate_one(backend)
        assert len(server.generation_requests) == 1
    assert isinstance(result, GenerationError) and "ANTHROPIC_API_KEY" in result.message


def test_xai_defaults_to_its_endpoint_and_sends_max_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-secret")
    default = create_backend(config(tmp_path, model_name="grok-4"))
    assert isinstance(default, OpenAIBackend) and default.base_url == XAI_BASE_URL
    with LoopbackLLMServer("openai", [Reply(program_answer(VALID, ["Linear"]))]) as server:
        backend = create_backend(
            config(tmp_path, model_name="xai:grok-3-mini", base_url=server.openai_base_url)
        )
        result = generate_one(backend)
        [posted] = server.generation_requests
    assert isinstance(result, Generation) and result.backend == "xai"
    assert posted.headers["authorization"] == "Bearer xai-secret"
    assert posted.body["model"] == "grok-3-mini" and posted.body["max_tokens"] == 4096
    assert SAMPLE.sampled_ops[0] in posted.prompt_text
