"""Every loop, driven by a scripted model through the real SDKs against loopback servers, scored by the real
evaluator on CPU: the model answers with a broken kernel, then a reward hack, then a correct faster kernel; each
loop must end with the correct kernel and record the hack as rejected with its kind."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
from kernel_loop_cases import BROKEN, CORRECT, HACK, IDEAS, TASK, fenced
from llm_servers import VARIANTS, LoopbackLLMServer, RecordedRequest, Reply, variant_config, variant_protocol

from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings
from kernel_search.loops import LOOPS, LoopBudget, Trajectory
from kernel_search.loops.llm_proposer import build_llm_proposer
from kernel_search.loops.scoring import Scorer
from kernel_search.tasks import Task, load_task

pytestmark = pytest.mark.timeout(300)

LOOP_SETTINGS: dict[str, dict[str, Any]] = {
    "refine": {},
    "beam": {"beam": 1, "rounds": 3, "ideas_per_member": 1},
    "priority": {"initial": 1, "children": 1},
    "evolve": {"islands": 1, "generations": 3},
}


class ScriptedModel:
    """Answers idea calls with a JSON list and code calls with broken, hack, correct (then correct again)."""

    def __init__(self) -> None:
        self.kernels = deque([BROKEN, HACK, CORRECT])

    def __call__(self, request: RecordedRequest) -> Reply:
        if "JSON array of" in request.prompt_text:
            return Reply(f"```json\n{IDEAS}\n```", prompt_tokens=300, completion_tokens=40)
        code = self.kernels.popleft() if self.kernels else CORRECT
        return Reply(fenced(code), prompt_tokens=900, completion_tokens=200)


@pytest.fixture(autouse=True)
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "OPENAI_API_KEY": "sk-test",
        "GEMINI_API_KEY": "gemini-test",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "XAI_API_KEY": "xai-test",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    path = tmp_path_factory.mktemp("task") / "1_RowSoftmax.py"
    path.write_text(TASK, encoding="utf-8")
    return load_task(path)


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    """One real evaluator for the module: identical candidates are measured once and then served from the cache."""
    options = EvalOptions(
        baselines=(),
        timing=TimingSettings(min_reps=30, budget_s=0.1),
        cache_dir=str(tmp_path_factory.mktemp("evaluator")),
    )
    return Scorer(Evaluator("cpu", options))


def run_loop(name: str, variant: str, task: Task, scorer: Scorer, tmp_path: Path) -> tuple[Trajectory, Any]:
    server = LoopbackLLMServer(variant_protocol(variant), responder=ScriptedModel())
    with server:
        keys = variant_config(variant, server)
        proposer = build_llm_proposer(
            keys["model_name"],
            base_url=keys["base_url"],
            api_style=keys.get("api_style", "chat"),
            cache_dir=str(tmp_path / "cache"),
            device="cpu",
            target_speedup=1.5,
        )
        loop = LOOPS[name](
            proposer, scorer, LoopBudget(max_attempts=6, target_speedup=1.5), **LOOP_SETTINGS[name]
        )
        try:
            trajectory = loop.run(task)
        finally:
            proposer.close()
    return trajectory, server


def check_trajectory(trajectory: Trajectory) -> None:
    verdicts = [(a.category, a.hack) for a in trajectory.attempts]
    assert verdicts == [("mismatch", None), ("reward_hack", "try_except_fallback"), ("ok", None)], verdicts
    best = trajectory.best
    assert best is not None and best.code == CORRECT and best.index == 2
    assert best.speedup_vs_eager is not None and best.speedup_vs_eager >= 1.5
    hack = trajectory.attempts[1]
    assert not hack.accepted and hack.score == 0.0 and trajectory.summary()["hacks"] == [hack.hack]
    assert trajectory.stop_reason == "target speedup 1.5x reached by attempt 2"
    for attempt in trajectory.attempts:  # every attempt carries what the model saw and said, and its bill
        assert attempt.messages[-1]["role"] == "assistant" and "```python" in attempt.messages[-1]["content"]
        assert attempt.prompt_tokens >= 900 and attempt.completion_tokens >= 200
        assert attempt.feedback.startswith(("rejected", "correct"))
    assert trajectory.attempts[1].parent is not None


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_each_loop_ends_with_the_correct_kernel_and_records_the_hack(
    name: str, task: Task, scorer: Scorer, tmp_path: Path
) -> None:
    trajectory, server = run_loop(name, "local-chat", task, scorer, tmp_path)
    check_trajectory(trajectory)
    prompts = [r.prompt_text for r in server.generation_requests]
    # the evaluator's verdict on the broken kernel reached the model in a later prompt
    assert any("mismatch" in p and "elements off" in p for p in prompts[1:]), name
    if name == "beam":
        assert any("JSON array of" in p for p in prompts) and trajectory.attempts[1].description.startswith(
            "Replace"
        )
    if name == "evolve":
        assert (
            trajectory.attempts[0].stage == "correctness"
        )  # the cascade stopped the broken kernel before timing
        assert trajectory.attempts[2].stage == "full"
    restored = Trajectory.from_dict(trajectory.to_dict())
    assert restored.summary() == trajectory.summary()


@pytest.mark.parametrize("variant", VARIANTS)
def test_refinement_runs_through_every_provider(
    variant: str, task: Task, scorer: Scorer, tmp_path: Path
) -> None:
    trajectory, server = run_loop("refine", variant, task, scorer, tmp_path)
    check_trajectory(trajectory)
    assert len(server.generation_requests) == 3
    if variant in {
        "openai",
        "gemini",
        "anthropic",
        "xai",
    }:  # priced models: the cost is accounted per attempt
        assert all(a.cost_usd > 0 for a in trajectory.attempts)
    else:
        assert trajectory.cost_usd == 0.0


def test_a_rerun_is_served_from_the_response_cache(task: Task, scorer: Scorer, tmp_path: Path) -> None:
    first, _ = run_loop("refine", "openai", task, scorer, tmp_path)
    again, server = run_loop("refine", "openai", task, scorer, tmp_path)
    assert server.generation_requests == []  # every answer came from the cache
    assert [a.code for a in again.attempts] == [a.code for a in first.attempts]
    assert again.prompt_tokens == 0 and first.prompt_tokens > 0


def test_concurrent_requests_for_one_candidate_share_one_evaluation(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "1_RowSoftmax.py").write_text(TASK, encoding="utf-8")
    task = load_task(tmp_path / "1_RowSoftmax.py")
    options = EvalOptions(baselines=(), timing=TimingSettings(budget_s=0.0), cache_dir=str(tmp_path / "ev"))
    scorer = Scorer(Evaluator("cpu", options))
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda i: scorer.measure(task, CORRECT, f"copy-{i}"), range(4)))
    assert scorer.evaluations == 1  # three threads waited for the one running evaluation
    assert sorted(cached for _, cached in outcomes) == [False, True, True, True]
    assert len({id(result) for result, _ in outcomes}) == 1 and outcomes[0][0].category == "ok"
    screened, cached = scorer.screen(task, CORRECT, "again")  # a full measurement answers the cheap stage too
    assert cached and screened is outcomes[0][0]


def test_the_refine_command_with_kernelbench_dspy_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from kernel_search.cli import main

    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "1_RowSoftmax.py").write_text(TASK, encoding="utf-8")
    with LoopbackLLMServer("openai", responder=ScriptedModel()) as server:
        common = ["--model", "gpt-4o-mini", "--base-url", server.openai_base_url, "--device", "cpu",
                  "--baselines", "none", "--budget-s", "0", "--num_correct_trials", "3", "--num_perf_trials", "30",
                  "--cache-dir", str(tmp_path / "ev")]  # fmt: skip
        out = tmp_path / "run"
        args = ["refine", str(folder), "--task_idx", "1", "--max_attempts", "4", "--target_speedup", "1.5"]
        assert main([*args, *common, "--save_results", "--out", str(out), "--verbose"]) == 0
        line = json.loads(capsys.readouterr().out.splitlines()[0])
        assert line["loop"] == "refine" and line["solved"] == 1 and line["rejected_hacks"] == 1
        assert (out / "trajectories" / "refine" / "1_RowSoftmax.json").is_file()
        assert main(["beam", str(folder), "--dry-run", *common, "--out", str(tmp_path / "dry")]) == 0
        dry = json.loads(capsys.readouterr().out.splitlines()[0])
        assert dry["attempts"] == 1  # --dry-run: one candidate, proposed and evaluated
    assert main(["refine", str(folder), "--task_idx", "2", "--device", "cpu"]) == 2
    assert "--task_idx 2 is out of range" in capsys.readouterr().err
