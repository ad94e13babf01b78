"""The tune run directory and database: schema, cross-run queries, resume after SIGKILL, spaces' rendering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kernel_search.spaces.inductor import InductorSpace, effective_options
from kernel_search.spaces.triton_launch import TritonLaunchSpace
from kernel_search.store import DB_FILE, SearchDatabase, open_many
from kernel_search.tasks.scaling import scale_task_source
from kernel_search.tuning.runs import Target, TuneRequest, run_targets
from kernel_search.tuning.search_space import ConfigSpace

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "pairs" / "pairs.jsonl"
TASK = """\
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.linear = nn.Linear(n, n)

    def forward(self, x):
        return torch.relu(self.linear(x))


def get_inputs():
    return [torch.randn(4, 8)]


def get_init_inputs():
    return [8]
"""


class ToySpace:
    """A user-defined space whose candidate source is just its config (the toy evaluator reads it back)."""

    name = "toy"

    def parameters(self):
        return {"block": [16, 32, 64, 128], "warps": [1, 2, 4, 8]}

    def is_valid(self, config):
        return config["block"] * config["warps"] <= 512

    def render(self, config):
        return json.dumps(config, sort_keys=True)


def toy_evaluate(source: str, name: str) -> dict:
    config = json.loads(source)
    if config["warps"] == 8:
        return {"category": "mismatch", "correct": False, "message": "wrong output"}
    runtime = 100.0 / config["block"] + config["warps"]
    return {"category": "ok", "correct": True, "runtime_us": runtime, "speedup_vs_eager": 10.0 / runtime,
            "speedup_vs_compile": 8.0 / runtime}  # fmt: skip


def toy_targets(names=("taskA", "taskB")):
    return [Target(name=n, make_space=ToySpace, make_evaluate=lambda: toy_evaluate) for n in names]


def test_run_directory_layout_and_schema(tmp_path):
    request = TuneRequest(space="toy", strategies=["random", "ga"], max_evaluations=8, seed=1)
    best = run_targets(toy_targets(), request, tmp_path / "run")
    root = tmp_path / "run"
    for rel in ["metadata.json", "run.log", DB_FILE, "search/search_history.json", "results/best_result.json",
                "results/summary.md", "results/best_so_far.png", "results/speedup_distribution.png"]:  # fmt: skip
        assert (root / rel).is_file(), rel
    meta = json.loads((root / "metadata.json").read_text())
    assert meta["request"]["strategies"] == ["random", "ga"] and "versions" in meta["environment"]
    with SearchDatabase(root / DB_FILE) as db:
        tables = {r[0] for r in db.query("SELECT table_name FROM information_schema.tables")}
        assert {"runs", "candidates", "measurements", "trials"} <= tables
        assert db.query("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL")[0][0] == 4
        # identical candidate code is measured once: candidates are shared by both strategies of a task
        distinct = db.query("SELECT count(DISTINCT source_hash) FROM trials WHERE source_hash IS NOT NULL")[
            0
        ][0]
        assert db.query("SELECT count(*) FROM measurements")[0][0] == distinct
        statuses = {r[0] for r in db.query("SELECT DISTINCT status FROM trials")}
        assert "ok" in statuses
        (score,) = db.query("SELECT max(score) FROM trials WHERE run_id LIKE 'taskA/%'")[0]
        wrong = db.query("SELECT count(*) FROM trials WHERE status = 'mismatch' AND score IS NULL")[0][0]
    # the best is the fastest accepted config (the score is the speedup over the better baseline: compile's 8.0);
    # warps=8 gives wrong answers and is never chosen however fast
    assert best["tasks"]["taskA"]["best_score"] == score
    assert best["tasks"]["taskA"]["best_config"]["warps"] != 8 and wrong > 0
    config = best["tasks"]["taskA"]["best_config"]
    assert score == pytest.approx(8.0 / (100.0 / config["block"] + config["warps"]))
    history = json.loads((root / "search/search_history.json").read_text())
    assert len(history["runs"]) == 4 and all(len(r["trials"]) >= 8 for r in history["runs"])
    assert "| taskA |" in (root / "results/summary.md").read_text()


def test_parallel_targets_record_the_same_search(tmp_path):
    names = ("t1", "t2", "t3", "t4")
    results = {}
    for parallel in (1, 3):
        request = TuneRequest(space="toy", strategies=["ga", "mcts"], max_evaluations=9, seed=2,
                              parallel_targets=parallel)  # fmt: skip
        run_targets(toy_targets(names), request, tmp_path / f"p{parallel}")
        with SearchDatabase(tmp_path / f"p{parallel}" / DB_FILE) as db:
            results[parallel] = db.query(
                "SELECT run_id, trial_index, config_key, score FROM trials ORDER BY ALL"
            )
    assert results[1] == results[3] and len(results[1]) >= 4 * 2 * 9


def test_cross_run_query(tmp_path):
    for seed in (0, 1):
        run_targets(toy_targets(), TuneRequest(space="toy", strategies=["random"], max_evaluations=6, seed=seed),
                    tmp_path / f"run{seed}")  # fmt: skip
    connection = open_many([tmp_path / "run0", tmp_path / "run1"])
    rows = connection.execute(
        "SELECT task, count(DISTINCT db), max(best_score) FROM all_runs GROUP BY task ORDER BY task"
    ).fetchall()
    connection.close()
    assert [(r[0], r[1]) for r in rows] == [("taskA", 2), ("taskB", 2)]
    assert all(r[2] > 0 for r in rows)


def test_rerun_of_a_finished_directory_is_skipped_and_another_space_refused(tmp_path):
    request = TuneRequest(space="toy", strategies=["random"], max_evaluations=5)
    run_targets(toy_targets(["t"]), request, tmp_path / "run")
    calls = []
    run_targets([Target("t", ToySpace, lambda: lambda s, n: calls.append(s) or toy_evaluate(s, n))], request,
                tmp_path / "run")  # fmt: skip
    assert calls == []
    with pytest.raises(ValueError, match="holds a run of space 'toy'"):
        run_targets(toy_targets(["t"]), TuneRequest(space="other", strategies=["random"], max_evaluations=5),
                    tmp_path / "run")  # fmt: skip


_RESUME_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    sys.path[:0] = [{root!r}, {tests!r}]
    from test_kernel_tune_store import ToySpace, toy_evaluate
    from kernel_search.tuning.runs import Target, TuneRequest, run_targets

    def slow(source, name):
        with open({calls!r}, "a") as handle:
            handle.write(source + "\\n")
        time.sleep(0.25)
        return toy_evaluate(source, name)

    request = TuneRequest(space="toy", strategies=["ga"], max_evaluations=12, seed=5,
                          strategy_options={{"ga": {{"population_size": 4}}}})
    run_targets([Target("t", ToySpace, lambda: slow)], request, {out!r})
    """
)


@pytest.mark.slow  # three Python processes that import torch (~25 s on a shared 2-core machine)
def test_resume_after_sigkill(tmp_path):
    out, calls = tmp_path / "run", tmp_path / "calls.txt"
    script = tmp_path / "tune.py"
    script.write_text(
        _RESUME_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), calls=str(calls), out=str(out))
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once a few trials are committed, mid-search
        if calls.exists() and len(calls.read_text().splitlines()) >= 6:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    first = calls.read_text().splitlines()
    assert 6 <= len(first) < 12
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=120)
    second = calls.read_text().splitlines()[len(first) :]
    with SearchDatabase(out / DB_FILE) as db:
        trials = db.trials("t/toy/ga/seed5")
        assert db.is_finished("t/toy/ga/seed5")
    evaluated = [t for t in trials if t.status != "invalid"]
    assert len(evaluated) == 12
    assert len({t.key for t in evaluated}) == 12
    # nothing measured before the kill is measured again (at most the evaluations in flight when killed)
    assert len(set(first) & set(second)) <= 4
    assert len(set(first) | set(second)) == len({t.payload.get("source_hash") for t in evaluated})
    uninterrupted = tmp_path / "clean"
    script.write_text(_RESUME_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), calls=str(tmp_path / "c2"),
                                            out=str(uninterrupted)))  # fmt: skip
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=120)
    with SearchDatabase(uninterrupted / DB_FILE) as db:
        clean = [t for t in db.trials("t/toy/ga/seed5") if t.status != "invalid"]
    assert [t.config for t in clean] == [t.config for t in evaluated]  # the resumed search is the same search


def test_inductor_space_renders_modes_as_options():
    space = InductorSpace(TASK, "cuda")
    config_space = ConfigSpace(space.parameters(), space.is_valid)
    default = config_space.default_config()
    assert effective_options(default) == {}
    spelled = {**default, "mode": "default", "max_autotune": True, "coordinate_descent_tuning": True}
    via_mode = {
        **default,
        "mode": "max-autotune-no-cudagraphs",
        "max_autotune": True,
        "coordinate_descent_tuning": True,
    }
    assert space.render(spelled) == space.render(via_mode)  # same code, measured once
    assert not space.is_valid({**default, "mode": "max-autotune", "max_autotune": False})
    assert not space.is_valid({**default, "max_autotune_gemm_backends": "TRITON"})  # unused without autotune
    source = space.render({**default, "epilogue_fusion": False})
    assert "class Model(" not in source and "class ModelNew(_KernelSearchEager)" in source
    namespace: dict = {}
    exec(compile(source, "candidate", "exec"), namespace)
    assert namespace["_KERNEL_SEARCH_OPTIONS"] == {"epilogue_fusion": False}
    assert "triton.cudagraphs" not in InductorSpace(TASK, "cpu").parameters()
    assert "cudagraph_mark_step_begin" not in source
    graphs = space.render({**default, "mode": "reduce-overhead", "triton.cudagraphs": True})
    assert "cudagraph_mark_step_begin()" in graphs and "outputs.clone()" in graphs
    assert ConfigSpace(InductorSpace(TASK, "cuda", "small").parameters()).size == 16


def test_scaled_task_repeats_inputs_along_batch():
    namespace: dict = {}
    exec(compile(scale_task_source(TASK, 64), "task", "exec"), namespace)
    (x,) = namespace["get_inputs"]()
    assert tuple(x.shape) == (256, 8)
    model = namespace["Model"](*namespace["get_init_inputs"]())
    assert model(x).shape == (256, 8)


def test_triton_launch_space_on_exported_pairs():
    from synth_modules.export.clean import launch_grid

    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    for row in rows:
        space = TritonLaunchSpace(row)
        config_space = ConfigSpace(space.parameters(), space.is_valid)
        default = config_space.default_config()
        assert default is not None
        launches = json.loads(row["capture_info"])["launches"]
        for name, launch in launches.items():
            if name in space.kernels:
                assert default[f"{name}.num_warps"] == launch["num_warps"]
        from kernel_search.tasks import check_candidate_source

        assert check_candidate_source(space.render(default)) is None  # defines class ModelNew
    space = TritonLaunchSpace(rows[0])
    kernel = space.kernels["triton_poi_fused_convolution_0"]
    config = {
        **ConfigSpace(space.parameters()).default_config(),
        f"{kernel.name}.XBLOCK": 128,
        f"{kernel.name}.YBLOCK": 4,
    }
    assert space.is_valid(config)
    source = space.render(config)
    grid = launch_grid(kernel.grid_type, kernel.numels, {"XBLOCK": 128, "YBLOCK": 4})
    assert f"{kernel.name}[{', '.join(map(str, grid))}" in source and "XBLOCK=128, YBLOCK=4" in source
    compile(source, "variant", "exec")
