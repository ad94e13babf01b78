"""The shared LLM machinery on its own: prompts, retry policy, Retry-After parsing, pacing, cache, pricing."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import random
import time
from pathlib import Path

import pytest

from prompts import load_prompt
from synth_modules.backends.pricing import estimate_cost, lookup_price
from synth_modules.backends.prompting import build_prompt, shorten_message
from synth_modules.backends.rate_limit import RequestLimiter
from synth_modules.backends.response_cache import ResponseCache, cache_key, default_cache_dir
from synth_modules.backends.retry import (
    ErrorInfo,
    RequestFailed,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)
from synth_modules.config import GeneratorConfig
from synth_modules.types import Category, GenerationRequest, RepairContext, Sample, Usage

SAMPLE = Sample(3, "s0-0000003", 7, ["Conv2d"], ["LSTM"], ["ReLU", "NotInCatalogOp"])


# ----- prompts ---------------------------------------------------------------------------------------------------
def test_synthesis_prompt_lists_ops_contract_example_and_the_ask() -> None:
    prompt = build_prompt(GenerationRequest(SAMPLE, "SynthModel_X"))
    user = prompt.user
    for line in (
        "- Conv2d (core)",
        "- LSTM (compound)",
        "- ReLU (supporting)",
        "- NotInCatalogOp (supporting)",
    ):
        assert any(row.startswith(line) for row in user.splitlines()), line
    assert "get_init_inputs" in user and "[args_list, kwargs_dict]" in user  # the program contract
    assert "class Model(nn.Module)" in user  # the worked example
    assert "Final Pattern:" in user and "```python" in user
    assert prompt.system and prompt.sha256 == build_prompt(GenerationRequest(SAMPLE, "SynthModel_X")).sha256


def test_repair_prompt_carries_previous_code_category_and_message() -> None:
    previous = "class Model(nn.Module):\n    pass  # the $dollar is kept literally\n"
    context = RepairContext(previous, "shape_error", "expected [[2, 4]], got [[2, 8]]")
    prompt = build_prompt(GenerationRequest(SAMPLE, "SynthModel_X", attempt=1, repair=context))
    assert previous.strip() in prompt.user
    assert "`shape_error`" in prompt.user and "expected [[2, 4]], got [[2, 8]]" in prompt.user
    assert load_prompt("repair").hint("shape_error") in prompt.user
    assert "- Conv2d (core)" in prompt.user
    prose = RepairContext("Sure! I'd use a conv.", str(Category.EXTRACTION_FAILURE), "no code block")
    prompt = build_prompt(GenerationRequest(SAMPLE, "SynthModel_X", attempt=1, repair=prose))
    assert "did not contain a usable program" in prompt.user and "Sure! I'd use a conv." in prompt.user


def test_prompt_rendering_refuses_missing_values_and_long_messages_are_cut() -> None:
    with pytest.raises(ValueError, match=r"\$operations"):
        load_prompt("synthesis").render(contract="c", example="e")
    long = "head " + "x" * 10_000 + " tail"
    short = shorten_message(long)
    assert short.startswith("head ") and short.endswith(" tail") and len(short) < 2_200


# ----- retries ---------------------------------------------------------------------------------------------------
def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after({"Retry-After": date}, now=now) <= 31
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (7, 8.0)]:
        delays = [policy.backoff_s(retry, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not fixed
    honoured = policy.delay_s(ErrorInfo(True, "429", retry_after_s=5.0), 1, rng)
    assert 5.0 <= honoured <= 5.5


class Flaky(Exception):
    pass


def test_call_with_retries_retries_transient_and_stops_on_permanent() -> None:
    policy = RetryPolicy(max_retries=3, base_delay_s=0.001)
    calls: list[int] = []
    retried: list[str] = []

    def classify(error: BaseException) -> ErrorInfo | None:
        if isinstance(error, Flaky):
            return ErrorInfo(str(error) == "transient", f"flaky: {error}")
        return None

    async def succeed_third_time() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Flaky("transient")
        return "ok"

    result = asyncio.run(
        call_with_retries(
            succeed_third_time, classify, policy, on_retry=lambda i, d: retried.append(i.description)
        )
    )
    assert result == "ok" and len(calls) == 3 and retried == ["flaky: transient"] * 2

    async def always_transient() -> str:
        raise Flaky("transient")

    with pytest.raises(RequestFailed) as caught:
        asyncio.run(call_with_retries(always_transient, classify, policy))
    assert caught.value.attempts == 4 and "gave up after 4 attempts" in caught.value.message

    calls.clear()

    async def permanent() -> str:
        calls.append(1)
        raise Flaky("permanent")

    with pytest.raises(RequestFailed) as caught:
        asyncio.run(call_with_retries(permanent, classify, policy))
    assert len(calls) == 1 and caught.value.attempts == 1

    async def bug() -> str:
        raise KeyError("a bug, not a provider failure")

    with pytest.raises(KeyError):
        asyncio.run(call_with_retries(bug, classify, policy))


def test_retry_after_beyond_the_cap_fails_fast() -> None:
    policy = RetryPolicy(max_retries=5, max_retry_after_s=10)
    calls: list[int] = []

    async def quota() -> None:
        calls.append(1)
        raise Flaky("quota")

    classify = lambda error: ErrorInfo(True, "HTTP 429", retry_after_s=3600.0)  # noqa: E731
    with pytest.raises(RequestFailed) as caught:
        asyncio.run(call_with_retries(quota, classify, policy))
    assert len(calls) == 1 and "3600" in caught.value.message and "quota" in caught.value.message


# ----- pacing ----------------------------------------------------------------------------------------------------
def test_limiter_bounds_concurrency_and_spaces_starts() -> None:
    limiter = RequestLimiter(max_concurrency=2, requests_per_minute=600)  # one start per 0.1 s
    active = 0
    peak = 0
    starts: list[float] = []

    async def one() -> None:
        nonlocal active, peak
        async with limiter.slot():
            await limiter.pace()
            starts.append(time.monotonic())
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.05)
            active -= 1

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(6)))

    asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert peak <= 2
    assert min(gaps) >= 0.07 and starts[-1] - starts[0] >= 0.45, gaps
    asyncio.run(main())  # a second event loop gets a fresh semaphore instead of an error


# ----- cache -----------------------------------------------------------------------------------------------------
def test_cache_key_covers_every_input_and_store_round_trips(tmp_path: Path) -> None:
    base = dict(
        backend="local/chat",
        model="m",
        prompt="p",
        temperature=0.8,
        max_tokens=4096,
        sample_id="s0",
        attempt=0,
    )
    key = cache_key(**base)
    for field, other in [
        ("backend", "gemini"),
        ("model", "m2"),
        ("prompt", "p2"),
        ("temperature", 0.7),
        ("max_tokens", 2048),
        ("sample_id", "s1"),
        ("attempt", 1),
    ]:
        assert cache_key(**{**base, field: other}) != key, field
    cache = ResponseCache(tmp_path / "llm")
    assert cache.get(key) is None
    cache.put(key, {"text": "hello", "usage": {"prompt_tokens": 1}})
    assert cache.get(key) == {"text": "hello", "usage": {"prompt_tokens": 1}}
    (tmp_path / "llm" / key[:2] / f"{key}.json").write_text("{torn")
    assert cache.get(key) is None
    config = GeneratorConfig(output_dir=str(tmp_path / "run"))
    assert default_cache_dir(config) == (tmp_path / "run" / ".cache" / "llm").resolve()
    config.cache_dir = str(tmp_path / "shared")
    assert default_cache_dir(config) == tmp_path / "shared" / "llm"


# ----- pricing ---------------------------------------------------------------------------------------------------
def test_price_lookup_uses_longest_prefix_and_unknown_models_cost_zero() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=100_000, calls=1)
    mini, full = lookup_price("gpt-4o-mini-2024-07-18"), lookup_price("gpt-4o-2024-08-06")
    assert mini is not None and full is not None and mini.input_per_mtok < full.input_per_mtok
    flash = estimate_cost("models/gemini-2.5-flash", usage)
    assert flash.priced and flash.usd == pytest.approx(0.30 + 0.1 * 2.50)
    unknown = estimate_cost("my-finetune", usage)
    assert unknown.usd == 0.0 and not unknown.priced and "my-finetune" in unknown.note
    local = estimate_cost("Qwen/Qwen2.5-Coder-7B-Instruct", usage, local=True)
    assert local.usd == 0.0 and local.priced and "local" in local.note
