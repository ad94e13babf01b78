"""`kernel-search tune --space inductor-small` end to end on CPU: the real evaluator and real torch.compile."""

from __future__ import annotations

import json

import pytest

from kernel_search.cli import main
from kernel_search.store import DB_FILE, SearchDatabase

TASK = """\
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return torch.relu(x * self.scale) + torch.sigmoid(x)


def get_inputs():
    return [torch.randn(64, 256)]


def get_init_inputs():
    return [2.0]
"""


@pytest.mark.slow  # two isolated evaluations with Inductor compiles (~1 min on a shared 2-core machine)
def test_tune_inductor_small_on_cpu(tmp_path, capsys):
    task = tmp_path / "1_Elementwise.py"
    task.write_text(TASK)
    out = tmp_path / "run"
    argv = [
        "tune", str(task), "--space", "inductor-small", "--strategy", "random", "--max-evals", "2",
        "--jobs", "2", "--device", "cpu", "--out", str(out), "--timing-budget-s", "0.1",
        "--cache-dir", str(tmp_path / "cache"), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    with SearchDatabase(out / DB_FILE) as db:
        trials = db.trials("1_Elementwise/inductor-small/random/seed0")
        records = [json.loads(r[0]) for r in db.query("SELECT record FROM measurements")]
    assert len(trials) == 2 and len(records) == 2
    for record in records:  # Inductor's C++ kernels compiled inside the isolated worker, checked and timed
        assert record["correct"] is True and record["category"] == "ok", record["message"]
        assert record["runtime_us"] > 0 and record["baselines"]["eager"] > 0
    assert all(t.succeeded and t.score == pytest.approx(min(t.payload["speedup_vs_eager"],
               t.payload["speedup_vs_compile"])) for t in trials)  # fmt: skip
    assert "run directory:" in capsys.readouterr().out
    assert main(argv) == 0  # a repeat resumes: nothing left to do, nothing evaluated again
    with SearchDatabase(out / DB_FILE) as db:
        assert db.query("SELECT count(*) FROM measurements")[0][0] == 2
