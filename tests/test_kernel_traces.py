"""Loop runs into a run directory and `kernel-search export-traces` back out as a dataset that loads with
`datasets`: scripted model (real openai SDK, loopback), real evaluator on CPU, real DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from kernel_loop_cases import CORRECT, TASK
from llm_servers import LoopbackLLMServer
from test_kernel_loops import ScriptedModel

from kernel_search.cli import main
from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings
from kernel_search.loops import LoopBudget
from kernel_search.loops.llm_proposer import build_llm_proposer
from kernel_search.loops.runner import LoopRequest, run_loops
from kernel_search.loops.scoring import Scorer
from kernel_search.store.database import DB_FILE, SearchDatabase
from kernel_search.tasks import load_task

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loops")
    (root / "1_RowSoftmax.py").write_text(TASK, encoding="utf-8")
    task = load_task(root / "1_RowSoftmax.py")
    options = EvalOptions(
        baselines=(), timing=TimingSettings(budget_s=0.1), cache_dir=str(root / "evaluator")
    )
    out = root / "run"
    with (
        pytest.MonkeyPatch.context() as patch,
        LoopbackLLMServer("openai", responder=ScriptedModel()) as server,
    ):
        patch.setenv("OPENAI_API_KEY", "sk-test")

        caches = iter(["cache-refine", "cache-beam"])

        def proposer():  # one scripted model (and response cache) per loop: each sees broken, hack, correct
            server.responder = ScriptedModel()
            cache = str(root / next(caches))
            return build_llm_proposer("gpt-4o-mini", cache_dir=cache, base_url=server.openai_base_url)

        request = LoopRequest(["refine", "beam"], LoopBudget(max_attempts=4, target_speedup=1.5),
                              {"beam": {"beam": 1, "rounds": 3, "ideas_per_member": 1}})  # fmt: skip
        run_loops([task], request, out, proposer, lambda db: Scorer(Evaluator("cpu", options), db))
    return out


def test_run_directory_layout_and_database(run_dir: Path) -> None:
    for name in ("metadata.json", "run.log", DB_FILE, "search/search_history.json", "results/best_result.json",
                 "results/summary.md", "trajectories/refine/1_RowSoftmax.json", "trajectories/beam/1_RowSoftmax.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    best = json.loads((run_dir / "results" / "best_result.json").read_text())
    assert {b["loop"]: b["code"] for b in best["best"]} == {"refine": CORRECT, "beam": CORRECT}
    assert (
        best["aggregates"]["refine"]["fast_1_vs_eager"] == 1.0
        and best["aggregates"]["beam"]["rejected_hacks"] == 1
    )
    assert best["evaluations"] == 3  # each distinct candidate once: beam's were all measured already
    with SearchDatabase(run_dir / DB_FILE) as database:
        rows = database.query("SELECT run_id, trial_index, status FROM trials ORDER BY run_id, trial_index")
        assert [r[2] for r in rows] == ["mismatch", "reward_hack", "ok"] * 2
        assert database.query("SELECT count(*) FROM candidates")[0][0] == 3
    assert "| refine | 1 | 1 | 1.00 |" in (run_dir / "results" / "summary.md").read_text()


def test_export_traces_loads_back_with_datasets(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "traces"
    assert main(["export-traces", str(run_dir), "--out", str(out), "--device", "cpu"]) == 0
    cache = str(
        tmp_path / "hf-cache"
    )  # datasets' shared cache can serve an older export of a same-named folder
    conversations = datasets.load_dataset(str(out), "conversations", split="train", cache_dir=cache)
    attempts = datasets.load_dataset(str(out), "attempts", split="train", cache_dir=cache)
    assert len(conversations) == 2 and len(attempts) == 6
    refine = next(row for row in conversations if row["loop"] == "refine")
    roles = [m["role"] for m in refine["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert "mismatch" in refine["messages"][3]["content"]  # the evaluator's verdict is the next user turn
    assert refine["categories"] == ["mismatch", "reward_hack", "ok"]
    assert refine["rewards"][:2] == [0.0, -1.0] and refine["rewards"][2] >= 1.5
    assert refine["solved"] and refine["best_code"] == CORRECT
    hack = next(row for row in attempts if row["category"] == "reward_hack")
    assert hack["hack"] == "try_except_fallback" and hack["reward"] == -1.0 and not hack["accepted"]
    assert hack["prompt"][-1]["role"] == "user" and hack["completion"].startswith("Here is the kernel.")


def test_export_traces_refuses_a_folder_without_trajectories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export-traces", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no trajectories/" in capsys.readouterr().err
