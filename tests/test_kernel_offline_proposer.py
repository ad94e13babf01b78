"""The offline proposer on a committed H200 capture (4 Triton kernels): what it proposes, without evaluating
(the loop tests evaluate; the slow test here runs a loop end to end in Triton's interpreter)."""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path

import pytest

from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings
from kernel_search.loops import LOOPS, LoopBudget
from kernel_search.loops.offline import OfflineProposer
from kernel_search.loops.rewrites import DROP_SIZE_ASSERTS
from kernel_search.loops.scoring import Scorer
from kernel_search.loops.seed_pairs import (
    launch_space_factory,
    pair_from_export_row,
    task_source_from_export_row,
)
from kernel_search.loops.trajectory import Attempt
from kernel_search.tasks import load_task
from kernel_search.tuning.search_space import config_key

PAIRS = Path(__file__).parent / "fixtures" / "pairs" / "pairs.jsonl"


def row(pair_id: str) -> dict:
    return next(r for r in map(json.loads, PAIRS.read_text().splitlines()) if r["id"] == pair_id)


@pytest.fixture
def setup(tmp_path: Path):
    source_row = row("fixture-0000")  # Conv2d -> GroupNorm -> Mish: four kernels, 1D and 2D grids
    path = tmp_path / "1_ConvGroupNormMish.py"
    path.write_text(task_source_from_export_row(source_row), encoding="utf-8")
    task = load_task(path)
    proposer = OfflineProposer(launch_space_factory({task.name: pair_from_export_row(source_row)}), seed=0)
    return task, proposer


def defines_model_new(source: str) -> bool:
    return "ModelNew" in {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)}


def test_start_is_inductors_code_and_refinements_are_single_smallest_moves(setup) -> None:
    task, proposer = setup
    [first] = proposer.start(task)
    assert first.origin == "inductor" and defines_model_new(first.code) and first.config is not None
    assert "assert_size_stride(" in first.code and first.config[DROP_SIZE_ASSERTS] is False
    assert "Inductor's code as captured" in first.description
    parent = Attempt(0, first.origin, first.code, config=first.config)
    seen = {config_key(first.config)}
    for _ in range(5):
        child = proposer.refine(task, parent, [parent])
        changed = [k for k in child.config if child.config[k] != first.config[k]]
        assert len(changed) == 1, changed  # one launch parameter at a time
        value, before = child.config[changed[0]], first.config[changed[0]]
        assert value in (before * 2, before // 2) or changed[0].endswith("num_stages"), (
            changed,
            before,
            value,
        )
        assert config_key(child.config) not in seen and defines_model_new(child.code)
        assert child.code != first.code
        seen.add(config_key(child.config))


def test_ideas_are_distinct_and_mutations_stay_valid_and_new(setup) -> None:
    task, proposer = setup
    [first] = proposer.start(task)
    parent = Attempt(0, first.origin, first.code, config=first.config)
    ideas = proposer.ideas(task, parent, 4, [parent])
    assert len({config_key(i.config) for i in ideas}) == 4 and all("->" in i.text for i in ideas)
    built = proposer.implement(task, parent, ideas[0])
    assert built.config == ideas[0].config and defines_model_new(built.code)
    _, space = proposer.space(task)
    rng = random.Random(1)
    for _ in range(5):
        child = proposer.mutate(task, parent, [], rng)
        assert space.is_valid(child.config) and space.contains(child.config)


def test_a_task_without_a_capture_is_a_clear_proposal_error(setup, tmp_path: Path) -> None:
    _, _ = setup
    path = tmp_path / "2_Other.py"
    path.write_text(task_source_from_export_row(row("fixture-0004")), encoding="utf-8")
    proposer = OfflineProposer(launch_space_factory({}), seed=0)
    [proposal] = proposer.start(load_task(path))
    assert proposal.code == "" and "no Inductor capture for 2_Other" in proposal.error


@pytest.mark.slow
def test_offline_refinement_runs_in_tritons_interpreter(tmp_path: Path) -> None:
    """The committed capture of Bmm -> Add -> Sigmoid, launch edits evaluated for real on CPU (about a minute)."""
    source_row = row("fixture-0005")
    path = tmp_path / "1_BmmAddSigmoid.py"
    path.write_text(task_source_from_export_row(source_row), encoding="utf-8")
    task = load_task(path)
    options = EvalOptions(baselines=(), timing=TimingSettings(budget_s=0.0), extra_env={"TRITON_INTERPRET": "1"},
                          cache_dir=str(tmp_path / "evaluator"))  # fmt: skip
    proposer = OfflineProposer(launch_space_factory({task.name: pair_from_export_row(source_row, cpu=True)}))
    trajectory = LOOPS["refine"](proposer, Scorer(Evaluator("cpu", options)), LoopBudget(max_attempts=2)).run(
        task
    )
    assert [a.category for a in trajectory.attempts] == ["ok", "ok"]
    assert [a.origin for a in trajectory.attempts] == ["inductor", "launch-edit"]
    assert trajectory.best is not None and trajectory.best.runtime_us > 0
