"""kernel-search over several device slots: `--gpus` parsing, least-loaded assignment, workers pinned to their
GPU, and real CPU evaluations (2 slots against 1, local against a real local Ray cluster) with the same verdicts,
the same best configs and the same row order. The 1-GPU path on CUDA is the `gpu` test at the end."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kernel_search import cli
from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings, load_task
from kernel_search.evaluator.isolation import IsolationSettings, run_isolated
from kernel_search.placement.devices import SlotAssigner, cpu_slots, parse_gpus, pinned_slot, resolve_slots
from kernel_search.spaces.base import TaskSpace
from kernel_search.tuning.runs import Target, TuneRequest, run_targets

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "kernel_search_corpus"
# task file -> (corpus task, candidate): outcomes that stop in correctness, in timing and after it.
CASES = {
    "1_lin": ("linear_relu", "hack_zeros"),
    "2_add": ("add_mul", "hack_input_mutation"),
    "3_lin": ("linear_relu", "hack_pointer_cache"),
    "4_lin": ("linear_relu", "hack_same_ops"),
}


# ----- discovery and assignment --------------------------------------------------------------------------------
def test_gpus_spec_picks_from_the_visible_ids() -> None:
    visible = ["0", "1", "2", "3"]
    assert parse_gpus(None, visible) == visible and parse_gpus("all", visible) == visible
    assert parse_gpus("2", visible) == ["0", "1"]
    assert parse_gpus("3,1", visible) == ["3", "1"]
    uuids = ["GPU-aa", "GPU-bb"]  # CUDA_VISIBLE_DEVICES may hold UUIDs: indices still name them
    assert [s.visible_devices for s in resolve_slots("cuda", "1,0", uuids)] == ["GPU-bb", "GPU-aa"]
    for bad, text in [("5", "between 1 and 4"), ("0", "between 1 and 4"), ("1,1", "distinct"),
                      ("0,9", "distinct"), ("x", "give all"), ("a,b", "comma-separated")]:  # fmt: skip
        with pytest.raises(ValueError, match=text):
            parse_gpus(bad, visible)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        parse_gpus("all", [])


def test_slots_pin_each_gpu_and_lock_it_apart() -> None:
    slots = resolve_slots("cuda", "all", ["4", "7"])
    assert [(s.device, s.visible_devices, s.lock_name) for s in slots] == [
        ("cuda:0", "4", "cuda_4"),
        ("cuda:0", "7", "cuda_7"),
    ]
    assert resolve_slots("cuda:1", None, ["4", "7"]) == [pinned_slot(0, "7")]
    with pytest.raises(ValueError, match="names one GPU"):
        resolve_slots("cuda:1", "2", ["4", "7"])
    assert [s.lock_name for s in resolve_slots("cpu", None)] == ["cpu"]
    assert [s.lock_name for s in resolve_slots("cpu", "2")] == ["cpu_0", "cpu_1"]
    with pytest.raises(ValueError, match="disagree"):
        Evaluator("cpu", slots=slots)


def test_assigner_balances_in_flight_work() -> None:
    assigner = SlotAssigner(cpu_slots(["a", "b", "c"]))
    held: list[Any] = []
    with assigner.lease() as first, assigner.lease() as second, assigner.lease() as third:
        held = [first.index, second.index, third.index]
        with assigner.lease() as fourth:  # all busy once: the lowest index again
            assert fourth.index == 0
    assert held == [0, 1, 2]
    with assigner.lease() as again:  # everything released: slot 0
        assert again.index == 0
    counts = [0, 0, 0]
    gate = threading.Barrier(6)

    def take() -> None:
        with assigner.lease() as slot:
            counts[slot.index] += 1
            gate.wait(timeout=10)  # all six hold a lease at once

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [2, 2, 2]


def _probe_module(folder: Path) -> str:
    (folder / "cvd_probe.py").write_text(  # a handler for the sandbox service, as the evaluator's worker is
        "import os\n"
        "def setup(settings):\n    return {}\n"
        "def handle(request, settings, scratch):\n    return {'cvd': os.environ.get('CUDA_VISIBLE_DEVICES')}\n"
    )
    return "cvd_probe"


def test_spawned_worker_sees_only_its_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    module = _probe_module(tmp_path)
    pinned = run_isolated(module, {}, IsolationSettings(device="cuda", timeout_s=60, visible_devices="2"))
    assert pinned.last("result") == {"cvd": "2"}
    inherited = run_isolated(module, {}, IsolationSettings(device="cuda", timeout_s=60))
    assert inherited.last("result") == {"cvd": "0,1,2,3"}
    on_cpu = run_isolated(module, {}, IsolationSettings(device="cpu", timeout_s=60, visible_devices="2"))
    assert on_cpu.last("result") == {"cvd": ""}  # a CPU evaluation never sees a GPU


# ----- real CPU evaluations over slots ---------------------------------------------------------------------------
def _eval_all_inputs(root: Path) -> tuple[Path, Path]:
    tasks, cands = root / "tasks", root / "cands"
    tasks.mkdir(parents=True, exist_ok=True)
    cands.mkdir(parents=True, exist_ok=True)
    for name, (task, candidate) in CASES.items():
        (tasks / f"{name}.py").write_text((CORPUS / f"task_{task}.py").read_text())
        (cands / f"{name}.py").write_text((CORPUS / f"{candidate}.py").read_text())
    return tasks, cands


def _eval_all(root: Path, out: str, *extra: str) -> list[dict[str, Any]]:
    tasks, cands = _eval_all_inputs(root)
    argv = ["eval-all", str(tasks), str(cands), "--out", str(root / out), "--device", "cpu",
            "--baselines", "none", "--budget-s", "0.2", "--cache-dir", str(root / "cache"), *extra]  # fmt: skip
    assert cli.main(argv) == 0
    return [json.loads(line) for line in (root / out / "results.jsonl").read_text().splitlines()]


def _verdicts(rows: list[dict[str, Any]]) -> list[tuple[str, str, str | None, bool]]:
    return [(r["task"], r["category"], r["hack"], r["correct"]) for r in rows]


def _no_overlap_per_lock(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Timing holds of each lock never overlap; returns how many evaluations each lock served."""
    spans: dict[str, list[tuple[float, float]]] = {}
    served: dict[str, int] = {}
    for row in rows:
        lock = row["timing"]["env"]["lock"]
        served[lock] = served.get(lock, 0) + 1
        spans.setdefault(lock, []).extend(tuple(s) for s in row["timing"].get("exclusive_spans", []))
    for held in spans.values():
        held.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(held)), held
    return served


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _eval_all(tmp_path_factory.mktemp("one"), "R")


def test_eval_all_on_two_slots_gives_the_same_verdicts(
    tmp_path: Path, one_slot: list[dict[str, Any]]
) -> None:
    rows = _eval_all(tmp_path, "R2", "--gpus", "2", "--jobs", "2")
    assert _verdicts(rows) == _verdicts(one_slot)  # same verdicts, rows in task order
    assert [v[1:3] for v in _verdicts(rows)] == [
        ("reward_hack", "constant_output"),
        ("reward_hack", "input_mutation"),
        ("reward_hack", "pointer_cache"),
        ("fallback", None),
    ]
    assert set(_no_overlap_per_lock(rows)) == {"cpu_0", "cpu_1"}  # both slots served evaluations
    assert _no_overlap_per_lock(one_slot) == {"cpu": 4}
    assert any(r["timing"].get("exclusive_spans") for r in rows)  # timing really ran under the locks


class VariantSpace(TaskSpace):
    """relu(linear(x)) * 2 three ways: honest, 30x redundant work (slower), off by a factor (wrong)."""

    name = "variants"
    BODIES: ClassVar[dict[str, str]] = {
        "honest": "        return torch.relu(self.linear(x)) * 2.0\n",
        "slow": "        y = x\n        for _ in range(30):\n            y = torch.relu(self.linear(x)) * 2.0\n        return y\n",
        "wrong": "        return torch.relu(self.linear(x)) * 3.0\n",
    }

    def parameters(self) -> dict[str, list[Any]]:
        return {"variant": list(self.BODIES)}

    def render(self, config: dict[str, Any]) -> str:
        head = (
            "import torch\nimport torch.nn as nn\n\n\nclass ModelNew(nn.Module):\n"
            "    def __init__(self, n_in, n_out):\n        super().__init__()\n"
            "        self.linear = nn.Linear(n_in, n_out)\n\n    def forward(self, x):\n"
        )
        return head + self.BODIES[config["variant"]]


def _tune(out: Path, evaluator: Evaluator, parallel: int) -> tuple[dict[str, Any], list[Any]]:
    task = load_task(CORPUS / "task_linear_relu.py")
    targets = [
        Target(
            name, VariantSpace, lambda: lambda source, cand: evaluator.evaluate(task, source, cand).to_dict()
        )
        for name in ("lin_a", "lin_b")
    ]
    request = TuneRequest(
        space="variants", strategies=["random"], max_evaluations=3, parallel_targets=parallel
    )
    best = run_targets(targets, request, out)
    history = json.loads((out / "search" / "search_history.json").read_text())
    return best, history


@pytest.mark.slow
def test_tune_on_two_slots_finds_the_same_best_configs(tmp_path: Path) -> None:
    options = EvalOptions(baselines=(), profile_check=False, cache_dir=str(tmp_path / "cache"),
                          timing=TimingSettings(budget_s=0.2))  # fmt: skip
    best_one, history_one = _tune(tmp_path / "one", Evaluator("cpu", options), 1)
    two = Evaluator("cpu", options, slots=cpu_slots(["0", "1"]))
    best_two, history_two = _tune(tmp_path / "two", two, 2)
    assert two.assigner.served[0] > 0 and two.assigner.served[1] > 0
    for best in (best_one, best_two):
        assert {t: r["best_config"] for t, r in best["tasks"].items()} == {
            "lin_a": {"variant": "honest"},
            "lin_b": {"variant": "honest"},
        }

    def shape(history: Any) -> list[Any]:
        entries = history if isinstance(history, list) else history.get("runs", history)
        return [(e["run_id"], [(t["config"], t["status"]) for t in e["trials"]]) for e in entries]

    assert shape(history_two) == shape(history_one)  # same trials, same statuses, same order
    statuses = dict(shape(history_one))["lin_a/variants/random/seed0"]
    assert ({"variant": "wrong"}, "mismatch") in statuses


# ----- Ray ------------------------------------------------------------------------------------------------------
def test_executor_ray_without_ray_is_one_clear_error(tmp_path: Path) -> None:
    tasks, cands = _eval_all_inputs(tmp_path)
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from kernel_search.cli import main\n"
        f"sys.exit(main(['eval-all', {str(tasks)!r}, {str(cands)!r}, '--out', {str(tmp_path / 'R')!r}, "
        "'--device', 'cpu', '--executor', 'ray']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "needs Ray" in proc.stderr, proc.stderr
    assert not (tmp_path / "R").exists()  # refused before any work


def test_bad_gpus_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks, cands = _eval_all_inputs(tmp_path)
    argv = ["eval-all", str(tasks), str(cands), "--out", str(tmp_path / "R"), "--device", "cpu"]
    assert cli.main([*argv, "--gpus", "a"]) == 2 and "distinct slot names" in capsys.readouterr().err
    assert (
        cli.main([*argv, "--ray-address", "auto"]) == 2 and "needs --executor ray" in capsys.readouterr().err
    )
    assert not (tmp_path / "R").exists()


@pytest.mark.slow
def test_eval_all_on_ray_matches_local(tmp_path: Path, one_slot: list[dict[str, Any]]) -> None:
    ray = pytest.importorskip("ray")
    from synth_modules.executors.ray_cluster import start_local_cluster

    start_local_cluster(num_cpus=2)
    try:
        started = time.monotonic()
        rows = _eval_all(tmp_path, "RR", "--executor", "ray", "--gpus", "2", "--jobs", "2")
        assert time.monotonic() - started < 600
        assert ray.is_initialized()  # the run joined the test's cluster and left it running
    finally:
        ray.shutdown()
    assert _verdicts(rows) == _verdicts(one_slot)
    assert set(_no_overlap_per_lock(rows)) == {"cpu_0", "cpu_1"}  # one actor per slot, both used
    assert len({r["timing"]["env"]["pid"] for r in rows}) == len(rows)  # each evaluation its own worker


# ----- CUDA -----------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_eval_all_on_the_visible_gpus(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from kernel_search.placement.devices import visible_gpu_ids

    tasks, cands = tmp_path / "tasks", tmp_path / "cands"
    tasks.mkdir()
    cands.mkdir()
    for i in range(4):
        (tasks / f"{i}_add.py").write_text((CORPUS / "task_add_mul.py").read_text())
        (cands / f"{i}_add.py").write_text((CORPUS / "good_triton_add_mul.py").read_text())
    argv = ["eval-all", str(tasks), str(cands), "--out", str(tmp_path / "R"), "--baselines", "none",
            "--cache-dir", str(tmp_path / "cache"), "--jobs", "4"]  # fmt: skip
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "R" / "results.jsonl").read_text().splitlines()]
    assert [r["category"] for r in rows] == ["ok"] * 4
    ids = visible_gpu_ids()
    served = _no_overlap_per_lock(rows)
    assert set(served) == {f"cuda_{g}" for g in ids[: len(served)]} and len(served) == min(4, len(ids))
    assert {r["timing"]["env"]["visible_devices"] for r in rows} <= set(ids)  # pinned: one GPU each
