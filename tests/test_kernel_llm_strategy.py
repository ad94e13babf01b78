"""LLM-guided search through the project's OpenAI backend (the real openai SDK) against a loopback server."""

from __future__ import annotations

import json
import re

from llm_servers import LoopbackLLMServer, Reply, error_reply

from kernel_search import Tuner
from kernel_search.strategies.llm_guided import parse_configs

SPACE = {"block": [16, 32, 64, 128, 256], "warps": [1, 2, 4, 8], "stages": [1, 2, 3]}
BEST = {"block": 128, "warps": 4, "stages": 2}


def score(config: dict) -> float:
    return -abs(config["block"] - 128) / 16 - abs(config["warps"] - 4) - abs(config["stages"] - 2)


def neighbour_proposals(request) -> Reply:
    """A model that reads the prompt's best config and proposes its neighbours (and one invalid value)."""
    text = request.prompt_text
    assert '"block": [16, 32, 64, 128, 256]' in text  # the space is shown
    lines = [json.loads(line) for line in re.findall(r'^\{"config".*$', text, flags=re.M)]
    count = int(re.search(r"Propose (\d+) new configs", text).group(1))
    center = lines[0]["config"] if lines else {"block": 16, "warps": 1, "stages": 1}
    proposals = [{**center, "block": 512}]  # not an allowed value: dropped by the strategy
    for name, values in SPACE.items():
        index = values.index(center[name])
        for step in (-1, 1):
            if 0 <= index + step < len(values):
                proposals.append({**center, name: values[index + step]})
    assert count == 4
    return Reply(text="Here you go:\n```json\n" + json.dumps(proposals) + "\n```")


def options(server: LoopbackLLMServer, tmp_path, **extra) -> dict:
    return {"model_name": "local", "base_url": server.openai_base_url, "cache_dir": str(tmp_path), **extra}


def test_llm_guided_search_uses_the_model_and_finds_the_optimum(tmp_path):
    with LoopbackLLMServer("openai", responder=neighbour_proposals) as server:
        tuner = Tuner(SPACE, score, strategy="llm", max_evaluations=30, seed=0,
                      strategy_options=options(server, tmp_path, batch_size=4))  # fmt: skip
        best = tuner.tune()
        posts = server.generation_requests
    assert best == BEST
    assert posts and all(p.path == "/v1/chat/completions" for p in posts)
    assert "score" in posts[-1].prompt_text and "Goal:" in posts[-1].prompt_text
    info = tuner.strategy_info
    assert info["fallback_reason"] == ""
    assert info["llm_configs"] >= 10 and info["dropped"] >= len(posts)  # 512 is refused every time


def test_llm_failures_fall_back_to_random_batches(tmp_path, caplog):
    script = [Reply(text="I would rather not answer in JSON."), error_reply(400, "bad request")]
    with LoopbackLLMServer("openai", script, default=Reply(text="[]")) as server:
        tuner = Tuner(SPACE, score, strategy="llm", max_evaluations=12, seed=1,
                      strategy_options=options(server, tmp_path, batch_size=4))  # fmt: skip
        tuner.tune()
    assert tuner.evaluation_count == 12
    assert tuner.strategy_info["random_configs"] == 12
    assert tuner.strategy_info["failed_requests"] == 1
    assert "held no JSON array" in caplog.text and "request 2 failed" in caplog.text


def test_no_key_means_random_and_says_so(monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tuner = Tuner(
        SPACE, score, strategy="llm", max_evaluations=5, strategy_options={"model_name": "gpt-4.1-mini"}
    )
    tuner.tune()
    assert "OPENAI_API_KEY" in tuner.strategy_info["fallback_reason"]
    assert "falls back to random search" in caplog.text and tuner.evaluation_count == 5


def test_parse_configs_reads_fenced_or_bare_json():
    assert parse_configs('```json\n[{"a": 1}]\n```') == [{"a": 1}]
    assert parse_configs('sure: [{"a": 2}, {"a": 3}] done') == [{"a": 2}, {"a": 3}]
    assert parse_configs("no json here") == []
