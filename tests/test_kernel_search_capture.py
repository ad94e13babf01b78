"""Capturing a task's Inductor code runs the task: it happens in export-pairs' sandboxed workers.

On CPU (CI) Inductor writes C++, so no capture succeeds, but the task still runs in the worker: what it can see
(the environment) and do (write outside its scratch directory) is what these tests check, together with the
categorised failures in index.json and the capture cache of the loops.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from kernel_search.loops.seed_pairs import capture_pairs
from kernel_search.tasks import load_task
from kernel_search.tasks.capture import capture_tasks
from kernel_search.tasks.inductor_candidates import (
    CaptureFailed,
    inductor_candidate,
    write_inductor_candidates,
)
from synth_modules.sandbox import landlock

pytestmark = pytest.mark.skipif(landlock.abi_version() < 6, reason="the workers refuse without Landlock")

SECRET = f"sk-capture-test-{uuid.uuid4().hex}"
TASK = """
import os
import torch
import torch.nn as nn
{prelude}

class Model(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.lin = nn.Linear(n, n)

    def forward(self, x):
        {forward}
        return torch.relu(self.lin(x))


def get_inputs():
    return [torch.randn(4, 8)]


def get_init_inputs():
    return [8]
"""


def _task(tmp_path: Path, name: str, prelude: str = "", forward: str = "pass"):
    path = tmp_path / "tasks" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TASK.format(prelude=prelude, forward=forward), encoding="utf-8")
    return load_task(path)


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("CAPTURE_TEST_SECRET", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def test_tasks_run_confined_without_secrets(tmp_path: Path, secret_env) -> None:
    outside = tmp_path / "escaped.txt"
    show_env = (
        "seen = [v for v in os.environ.values() if v.startswith('sk-')]; "
        "raise RuntimeError('env: ' + os.environ.get('CAPTURE_TEST_SECRET', 'absent') + ' ' + str(len(seen)))"
    )
    tasks = [
        _task(tmp_path, "shows_env", forward=show_env),
        _task(tmp_path, "writes_outside", prelude=f"open({str(outside)!r}, 'w').write('x')"),
        _task(tmp_path, "honest"),
    ]
    found = capture_tasks(tasks, "cpu", jobs=1, log_dir=tmp_path / "logs")
    assert set(found) == {"shows_env", "writes_outside", "honest"}
    assert "env: absent 0" in found["shows_env"], found["shows_env"]
    assert SECRET not in json.dumps(found)
    assert not outside.exists()
    assert found["writes_outside"].split(":", 1)[0] != "ok"
    # On CPU Inductor writes C++: a categorised reason, not an exception and not a pair.
    assert found["honest"].startswith("unsupported:"), found["honest"]


def test_inductor_candidates_index_and_single_task(tmp_path: Path) -> None:
    task = _task(tmp_path, "honest")
    index = write_inductor_candidates([task], tmp_path / "cands", "cpu")
    on_disk = json.loads((tmp_path / "cands" / "index.json").read_text(encoding="utf-8"))
    assert on_disk == index
    assert index["written"] == [] and index["failed"]["honest"].startswith("unsupported:")
    assert not (tmp_path / "cands" / "honest.py").exists()
    with pytest.raises(CaptureFailed, match="unsupported"):
        inductor_candidate(task.path, "cpu")


def test_capture_pairs_serves_cached_pairs_without_running_the_task(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    task = _task(tmp_path, "cached", prelude=f"open({str(marker)!r}, 'w').write('x')")
    cache = tmp_path / "pairs"
    cache.mkdir()
    cached = {"id": "cached", "entry_point": "Model", "triton_code": "# cached", "capture_info": {}}
    (cache / f"{task.sha}.json").write_text(json.dumps(cached), encoding="utf-8")
    assert capture_pairs([task], cache, "cpu") == {"cached": cached}
    assert not marker.exists() and not (cache / "logs").exists()  # no worker was started
