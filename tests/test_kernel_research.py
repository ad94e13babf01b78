"""The research pipeline: Exa literature discovery through the real exa-py SDK against a loopback server, ideas
and novelty from a scripted model (real openai SDK, loopback), the offline catalog, and the offline demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from exa_server import LoopbackExaServer, exa_result
from llm_servers import LoopbackLLMServer, RecordedRequest, Reply

from kernel_search.cli import main
from kernel_search.loops.llm_calls import LLMCaller
from kernel_search.loops.llm_proposer import build_llm_proposer
from kernel_search.research import literature
from kernel_search.research.ideas import Idea, catalog, generate_ideas, lexical_novelty, select

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXA_API_KEY", raising=False)
    monkeypatch.delenv("EXA_BASE_URL", raising=False)


def test_discovery_without_a_key_is_a_clear_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = literature.discover("LLM inference", "softmax")
    assert found["skipped"] and "EXA_API_KEY is not set" in found["reason"] and found["papers"] == []
    assert (
        main(["discover", "--domain", "LLM inference", "--operation", "softmax", "--out", str(tmp_path)]) == 0
    )
    assert "EXA_API_KEY is not set" in capsys.readouterr().out
    written = json.loads((tmp_path / "literature" / "literature_summary.json").read_text())
    assert written["skipped"] is True


def test_discovery_through_exa_py_against_a_loopback_server(monkeypatch: pytest.MonkeyPatch) -> None:
    papers = [
        exa_result(
            "Online softmax normalizer calculation", "https://arxiv.org/abs/1805.02867", "one pass softmax"
        ),
        exa_result("FlashAttention", "https://arxiv.org/abs/2205.14135", "IO-aware exact attention tiling"),
    ]
    with LoopbackExaServer([papers, 500]) as server:
        monkeypatch.setenv("EXA_API_KEY", "exa-secret")
        monkeypatch.setenv("EXA_BASE_URL", server.url)
        found = literature.discover("LLM inference", "softmax", num_results=2)
        failed = literature.discover("LLM inference", "softmax", num_results=2)
    assert not found["skipped"]
    assert [p["title"] for p in found["papers"]] == [
        "Online softmax normalizer calculation",
        "FlashAttention",
    ]
    assert found["papers"][1]["snippet"] == "IO-aware exact attention tiling"
    request = server.requests[0]
    assert request["headers"]["x-api-key"] == "exa-secret"
    assert request["body"]["query"] == found["query"] and request["body"]["numResults"] == 2
    assert "softmax" in request["body"]["query"]
    assert failed["skipped"] and "Exa search failed" in failed["reason"]  # recorded, not raised


def test_catalog_ideas_and_lexical_novelty() -> None:
    ideas = catalog("softmax")
    assert {i.strategy for i in ideas} >= {"pattern", "ga", "de"} and "mcts" not in {
        i.strategy for i in ideas
    }
    idea = Idea("Genetic search of launch configurations", "evolve block sizes and warps", "ga")
    close = [
        {"title": "Genetic search of launch configurations for Triton kernels", "snippet": "block sizes"}
    ]
    far = [{"title": "Protein folding with transformers", "snippet": "structure prediction"}]
    near_score, note = lexical_novelty(idea, close)
    assert near_score < lexical_novelty(idea, far)[0] == 1.0 and "Genetic search" in note
    assert lexical_novelty(idea, [])[1] == "no papers to compare with"


def test_model_ideas_and_novelty_from_a_scripted_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ideas_json = json.dumps(
        [
            {"title": "Warp sweep", "description": "sweep num_warps per kernel", "strategy": "pattern"},
            {"title": "Made-up search", "description": "not a strategy we have", "strategy": "annealing"},
            {"title": "Evolve blocks", "description": "genetic search over block sizes", "strategy": "ga"},
        ]
    )

    def answer(request: RecordedRequest) -> Reply:
        if "Propose 3 distinct experiments" in request.prompt_text:
            return Reply(f"```json\n{ideas_json}\n```")
        novelty = 0.8 if "Evolve blocks" in request.prompt_text else 0.3
        return Reply(f'```json\n{{"novelty": {novelty}, "reason": "scripted"}}\n```')

    with LoopbackLLMServer("openai", responder=answer) as server:
        proposer = build_llm_proposer("gpt-4o-mini", cache_dir=str(tmp_path), base_url=server.openai_base_url)
        caller = LLMCaller(proposer.backend)
        try:
            papers = [{"title": "Triton autotuning", "snippet": "block sizes"}]
            ideas = generate_ideas("LLM inference", "softmax", papers, 3, caller)
        finally:
            caller.close()
    assert [(i.title, i.strategy, i.source) for i in ideas] == [
        ("Warp sweep", "pattern", "model"),
        ("Evolve blocks", "ga", "model"),
    ]  # the idea naming an unknown strategy was dropped
    assert [i.novelty for i in ideas] == [0.3, 0.8] and select(ideas).title == "Evolve blocks"
    assert "Triton autotuning" in server.generation_requests[0].prompt_text  # the papers reached the model


def test_bad_research_arguments_are_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--domain", "x", "--operation", "seeds"]) == 2
    assert "--operation seeds needs --tasks" in capsys.readouterr().err
    assert main(["run", "--domain", "x", "--operation", "softmax", "--max-evals", "0"]) == 2
    assert ">= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_offline_demo_runs_end_to_end_on_cpu(tmp_path: Path) -> None:
    """Triton's interpreter runs the shipped H200 capture: slow on CPU (about a minute)."""
    out = tmp_path / "demo"
    args = [
        "demo",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--max-evals",
        "1",
        "--baselines",
        "none",
        "--budget-s",
        "0",
    ]
    assert main(args) == 0
    for name in ("metadata.json", "run.log", "kernel_search.duckdb", "literature/literature_summary.json",
                 "ideas/ideas.json", "ideas/selected_idea.json", "search/search_history.json",
                 "results/best_result.json", "results/summary.md", "results/experiments.json"):  # fmt: skip
        assert (out / name).is_file(), name
    [experiment] = json.loads((out / "results" / "experiments.json").read_text())
    assert experiment["inductor"]["category"] == "ok" and experiment["tuned"]["category"] == "ok"
    assert "Selected: **" in (out / "results" / "summary.md").read_text()
