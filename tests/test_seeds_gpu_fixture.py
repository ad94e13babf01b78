"""Seed tasks measured on an H200 (export-seeds --profile gpu --device cuda, see docs/benchmarks.md), checked on
CPU: the index's invariants, and the task files re-read through the scaler's own constant finder and estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synth_modules.export.seeds_measured import headroom
from synth_modules.scaling import estimate_source, find_size_constants

FIXTURE = Path(__file__).parent / "fixtures" / "seeds_gpu"
INDEX = json.loads((FIXTURE / "index.json").read_text())
REASONS = {
    "launch_bound",
    "degenerate",
    "memory",
    "invalid",
    "unsupported",
    "graph_capture",
    "timeout",
    "crash",
}


def test_kept_tasks_passed_the_launch_bound_test_and_are_ranked_by_headroom() -> None:
    tasks = INDEX["tasks"]
    assert INDEX["profile"] == "gpu" and "H200" in INDEX["gpu_name"] and len(tasks) >= 10
    for task in tasks:
        assert task["cuda_graph_us"] > 0 and task["graph_speedup"] < 1.1
        assert task["roofline_us"] > 0
        assert task["headroom_eager"] == pytest.approx(task["eager_us"] / task["roofline_us"])
    assert [t["index"] for t in tasks] == list(range(1, len(tasks) + 1))
    assert [headroom(t) for t in tasks] == sorted((headroom(t) for t in tasks), reverse=True)


def test_every_drop_has_a_known_reason() -> None:
    assert {s["reason"] for s in INDEX["skipped"]} <= REASONS
    assert sum(INDEX["dropped"].values()) == len(INDEX["skipped"])
    for drop in INDEX["skipped"]:
        if drop["reason"] == "launch_bound":
            assert drop["graph_speedup"] >= 1.1


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURE.glob("*.py")))
def test_task_files_carry_the_scaled_constants_and_run_on_meta(name: str) -> None:
    task = next(t for t in INDEX["tasks"] if t["file"] == name)
    text = (FIXTURE / name).read_text()
    constants = {c.name: c.value for c in find_size_constants(text)}
    for constant, value in task["scaling"]["values"].items():
        assert constants.get(constant, value) == value  # a grown constant the file still reads has its value
    estimate = estimate_source(text, "Model")
    assert estimate.flops == task["flops"] and estimate.min_bytes == task["bytes"]
