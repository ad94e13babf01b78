"""Every LLM backend, through its real SDK, against a loopback server speaking its wire protocol.

Variants: an OpenAI model name (chat), `local:<model>` over /chat/completions and over /completions (openai SDK),
a Gemini model name (google-genai SDK, models/*:generateContent), a Claude model name (anthropic SDK,
/v1/messages) and a Grok model name (openai SDK pointed at an xAI-style endpoint).
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_servers import (
    VARIANTS,
    LoopbackLLMServer,
    Reply,
    error_reply,
    program_answer,
    variant_config,
    variant_protocol,
)

from synth_modules.backends.llm_base import LLMBackend
from synth_modules.backends.registry import create_backend
from synth_modules.backends.retry import RetryPolicy
from synth_modules.config import GeneratorConfig
from synth_modules.program import find_module_classes
from synth_modules.types import (
    Category,
    Generation,
    GenerationError,
    GenerationRequest,
    RepairContext,
    Sample,
)

pytestmark = pytest.mark.timeout(60)

FAST_RETRIES = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)
SAMPLE = Sample(0, "s0-0000000", 0, ["Linear"], [], ["ReLU"])
ENTRY = "SynthModel_Linear_ReLU_5a3f"

VALID = """\
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.fc = nn.Linear(features, features)

    def forward(self, x):
        return torch.relu(self.fc(x)) + x


def get_inputs():
    return [torch.randn(4, 16)]


def get_init_inputs():
    return [[16], {}]
"""


@pytest.fixture(autouse=True)
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("XAI_API_KEY", "xai-test")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


class Harness:
    """One server plus backends built from GeneratorConfig through the registry, as the pipeline does."""

    def __init__(self, variant: str, tmp_path: Path, script: list[Reply], **server_kw: Any):
        self.variant = variant
        self.tmp_path = tmp_path
        self.server = LoopbackLLMServer(variant_protocol(variant), script, **server_kw)

    def backend(self, retry_policy: RetryPolicy = FAST_RETRIES, **overrides: Any) -> LLMBackend:
        keys = variant_config(self.variant, self.server, output_dir=str(self.tmp_path / "run"), **overrides)
        backend = create_backend(GeneratorConfig(**keys))
        assert isinstance(backend, LLMBackend)
        backend.retry_policy = retry_policy
        return backend


@pytest.fixture
def harness_factory(variant: str, tmp_path: Path) -> Iterator[Any]:
    servers: list[LoopbackLLMServer] = []

    def make(script: list[Reply], **server_kw: Any) -> Harness:
        harness = Harness(variant, tmp_path, script, **server_kw)
        servers.append(harness.server.__enter__())
        return harness

    yield make
    for server in servers:
        server.close()


def generate(backend: LLMBackend, *requests: GenerationRequest) -> list[Generation | GenerationError]:
    """Run requests concurrently on one event loop; errors are returned, not raised."""

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(backend.generate(r) for r in requests), return_exceptions=True)
        finally:
            await backend.aclose()

    results = asyncio.run(main())
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, GenerationError):
            raise result
    return results


def request(
    attempt: int = 0, repair: RepairContext | None = None, sample: Sample = SAMPLE
) -> GenerationRequest:
    return GenerationRequest(sample, ENTRY, attempt=attempt, repair=repair)


def ok_reply(**kw: Any) -> Reply:
    return Reply(program_answer(VALID, ["Linear", "ReLU", "add"]), **kw)


def assert_program(result: Generation | GenerationError) -> Generation:
    assert isinstance(result, Generation), result
    assert [c.name for c in find_module_classes(ast.parse(result.source))] == [ENTRY]
    return result


def test_429_with_retry_after_is_honoured_then_succeeds(harness_factory: Any) -> None:
    harness = harness_factory([error_reply(429, retry_after="1"), ok_reply()])
    backend = harness.backend()
    started = time.monotonic()
    [result] = generate(backend, request())
    elapsed = time.monotonic() - started
    generation = assert_program(result)
    assert generation.final_pattern == ["Linear", "ReLU", "add"]
    posts = harness.server.generation_requests
    assert len(posts) == 2
    assert posts[1].arrived - posts[0].arrived >= 1.0  # waited as long as the server asked
    assert elapsed < 10.0  # seconds, not the minutes of a stuck client
    assert backend.stats()["retries"] == 1


def test_5xx_is_retried_with_backoff_then_succeeds(harness_factory: Any) -> None:
    harness = harness_factory([error_reply(500), error_reply(503), ok_reply()])
    backend = harness.backend()
    [result] = generate(backend, request())
    assert_program(result)
    assert len(harness.server.generation_requests) == 3
    stats = backend.stats()
    assert stats["retries"] == 2 and stats["failed_requests"] == 0
    assert backend.usage().calls == 1  # only the successful call is billed


def test_persistent_5xx_ends_as_llm_error(harness_factory: Any) -> None:
    harness = harness_factory([], default=error_reply(502))
    backend = harness.backend(retry_policy=RetryPolicy(max_retries=2, base_delay_s=0.01))
    [result] = generate(backend, request())
    assert isinstance(result, GenerationError)
    assert result.category == Category.LLM_ERROR
    assert "502" in result.message and "gave up after 3 attempts" in result.message
    assert len(harness.server.generation_requests) == 3


def test_hanging_server_times_out_and_is_categorized(harness_factory: Any) -> None:
    harness = harness_factory([], default=ok_reply(delay_s=30))
    backend = harness.backend(
        retry_policy=RetryPolicy(max_retries=1, base_delay_s=0.01), request_timeout_s=0.5
    )
    started = time.monotonic()
    [result] = generate(backend, request())
    assert time.monotonic() - started < 15.0  # two 0.5 s timeouts, not two 30 s hangs
    assert isinstance(result, GenerationError)
    assert result.category == Category.LLM_ERROR
    assert "timed out after 0.5 s" in result.message and "2 attempts" in result.message


def test_prose_without_code_is_an_extraction_failure(harness_factory: Any) -> None:
    prose = "I would stack a Linear layer and a ReLU, then add the input back as a residual."
    harness = harness_factory([Reply(prose)])
    [result] = generate(harness.backend(), request())
    assert isinstance(result, GenerationError)
    assert result.category == Category.EXTRACTION_FAILURE
    assert result.response == prose  # handed back so the repair prompt can show it


def test_failed_candidate_goes_back_with_its_error_and_the_repair_is_used(harness_factory: Any) -> None:
    broken = VALID.replace("torch.randn(4, 16)", "torch.randn(4, 15)")  # shape error at run time
    harness = harness_factory([Reply(program_answer(broken, ["Linear", "ReLU"])), ok_reply()])
    backend = harness.backend()
    [first] = generate(backend, request())
    first = assert_program(first)
    assert "torch.randn(4, 15)" in first.source
    message = "eager forward failed: mat1 and mat2 shapes cannot be multiplied (4x15 and 16x16)"
    repair = RepairContext(first.source, str(Category.EAGER_ERROR), message)
    [second] = generate(harness.backend(), request(attempt=1, repair=repair))
    second = assert_program(second)
    assert "torch.randn(4, 16)" in second.source
    repair_prompt = harness.server.generation_requests[1].prompt_text
    assert first.source.strip() in repair_prompt
    assert "`eager_error`" in repair_prompt and message in repair_prompt
    assert second.prompt_sha256 != first.prompt_sha256


def test_usage_and_cost_are_accounted_per_call_and_in_total(harness_factory: Any) -> None:
    harness = harness_factory(
        [
            ok_reply(prompt_tokens=1200, completion_tokens=300),
            ok_reply(prompt_tokens=800, completion_tokens=200),
        ]
    )
    backend = harness.backend()
    other = Sample(1, "s0-0000001", 0, ["Linear"], [], ["ReLU"])
    first, second = generate(backend, request(), request(sample=other))
    assert isinstance(first, Generation) and isinstance(second, Generation)
    assert sorted(g.usage.prompt_tokens for g in (first, second)) == [800, 1200]
    total = backend.usage()
    assert (total.prompt_tokens, total.completion_tokens, total.calls) == (2000, 500, 2)
    expected = {  # USD per 1M tokens in synth_modules/data/llm_prices.toml
        "openai": (2000 * 0.15 + 500 * 0.60) / 1e6,
        "gemini": (2000 * 0.30 + 500 * 2.50) / 1e6,
        "anthropic": (2000 * 1.00 + 500 * 5.00) / 1e6,
        "xai": (2000 * 0.30 + 500 * 0.50) / 1e6,
    }.get(harness.variant, 0.0)
    assert backend.cost_usd() == pytest.approx(expected)
    stats = backend.stats()
    assert stats["prompt_tokens"] == 2000 and stats["cost_priced"] is True
    assert stats["cost_usd"] == pytest.approx(expected, abs=1e-6)


def test_repeated_request_is_served_from_the_disk_cache(harness_factory: Any) -> None:
    harness = harness_factory([ok_reply(), ok_reply()])
    backend = harness.backend()
    [first] = generate(backend, request())
    [again] = generate(backend, request())
    [resumed] = generate(harness.backend(), request())  # a new run over the same output_dir
    assert len(harness.server.generation_requests) == 1
    assert isinstance(first, Generation) and not first.cached
    for hit in (again, resumed):
        assert isinstance(hit, Generation) and hit.cached
        assert hit.source == first.source and hit.usage.calls == 0
    assert backend.stats()["cache_hits"] == 1 and backend.usage().calls == 1
    [retry] = generate(backend, request(attempt=1))  # another attempt is another draw
    assert isinstance(retry, Generation) and not retry.cached
    assert len(harness.server.generation_requests) == 2


def test_blocked_truncated_and_empty_answers_are_categorized(harness_factory: Any) -> None:
    cut = "Here it is:\n```python\n" + VALID[:120]
    harness = harness_factory([Reply("", finish="blocked"), Reply(cut, finish="length"), Reply("")])
    backend = harness.backend()
    samples = [Sample(i, f"s0-000000{i}", 0, ["Linear"], [], ["ReLU"]) for i in range(3)]
    results = []
    for sample in samples:  # one at a time, so each takes its scripted reply in order
        results += generate(backend, request(sample=sample))
    blocked, truncated, empty = results
    assert isinstance(blocked, GenerationError) and blocked.category == Category.LLM_ERROR
    assert "blocked" in blocked.message
    assert isinstance(truncated, GenerationError) and truncated.category == Category.EXTRACTION_FAILURE
    assert "max_tokens=4096" in truncated.message and "cut off" in truncated.message
    assert isinstance(empty, GenerationError) and empty.category == Category.LLM_ERROR
    assert "empty answer" in empty.message


def test_concurrency_is_bounded_and_requests_overlap(harness_factory: Any) -> None:
    harness = harness_factory([], default=ok_reply(), delay_s=0.3)
    backend = harness.backend(max_concurrency=3)
    samples = [Sample(i, f"s0-{i:07d}", 0, ["Linear"], [], ["ReLU"]) for i in range(9)]
    started = time.monotonic()
    results = generate(backend, *(request(sample=s) for s in samples))
    elapsed = time.monotonic() - started
    assert all(isinstance(r, Generation) for r in results)
    assert harness.server.max_in_flight == 3
    assert elapsed >= 0.85  # at most three at a time: at least three waves of 0.3 s


def test_requests_per_minute_limit_spaces_requests(harness_factory: Any) -> None:
    harness = harness_factory([], default=ok_reply())
    backend = harness.backend(max_concurrency=8, requests_per_minute=300)  # one start per 0.2 s
    samples = [Sample(i, f"s0-{i:07d}", 0, ["Linear"], [], ["ReLU"]) for i in range(5)]

    async def main() -> None:
        await backend.generate(request(sample=samples[0]))  # warm the client: its first connection is slow
        await asyncio.gather(*(backend.generate(request(sample=s)) for s in samples[1:]))
        await backend.aclose()

    asyncio.run(main())
    arrivals = sorted(r.arrived for r in harness.server.generation_requests)
    assert len(arrivals) == 5
    paced = arrivals[1:]  # the burst of four, issued together
    gaps = [b - a for a, b in itertools.pairwise(paced)]
    assert min(gaps) >= 0.1 and paced[-1] - paced[0] >= 0.5, gaps
