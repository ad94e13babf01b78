"""Run store: atomic files, durable ledgers that survive a torn write or a kill mid-commit, refusal of a
different config, one run per directory, no overwritten program file."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from synth_modules.config import ConfigError, build_config
from synth_modules.run.lock import DirectoryLockedError
from synth_modules.run.store import (
    MANIFEST_FILE,
    REJECTED_FILE,
    RUN_FILE,
    STAGING_DIR,
    ProgramFileCollision,
    RunStore,
    atomic_write_text,
    read_jsonl,
)

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path, **overrides):
    return build_config(None, {"output_dir": str(tmp_path / "run"), **overrides})


def test_accept_writes_file_then_manifest(tmp_path):
    config = _config(tmp_path)
    store = RunStore.open(config, {"versions": {}})
    store.accept(
        "print('x')\n", {"id": "s0-0000000", "entry_point": "SynthModel_A_1", "file": "SynthModel_A_1.py"}
    )
    store.reject({"id": "s0-0000001", "final": True, "category": "mismatch"})
    store.close()
    root = config.output_path
    assert (root / "SynthModel_A_1.py").read_text() == "print('x')\n"
    state = RunStore(root).load_state()
    assert set(state.accepted) == {"s0-0000000"}
    assert state.finally_rejected == {"s0-0000001"}
    run = json.loads((root / RUN_FILE).read_text())
    assert run["config"]["output_dir"] == config.output_dir
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_torn_ledger_tail_is_repaired_on_reopen(tmp_path):
    config = _config(tmp_path)
    store = RunStore.open(config, {})
    store.reject({"id": "a", "final": True})
    store.close()
    with (config.output_path / REJECTED_FILE).open("a") as handle:
        handle.write('{"id": "b", "fin')  # killed mid-write
    store = RunStore.open(config, {})
    store.reject({"id": "c", "final": True})
    store.close()
    ids = [rec["id"] for rec in read_jsonl(config.output_path / REJECTED_FILE)]
    assert ids == ["a", "c"]


def test_manifest_line_without_file_is_not_done(tmp_path):
    config = _config(tmp_path)
    store = RunStore.open(config, {})
    store.close()
    with (config.output_path / MANIFEST_FILE).open("a") as handle:
        handle.write(json.dumps({"id": "x", "entry_point": "E", "file": "E.py"}) + "\n")
    assert RunStore(config.output_path).load_state().done_ids == set()


def test_different_config_is_refused_unless_forced(tmp_path):
    RunStore.open(_config(tmp_path, seed=1), {}).close()
    with pytest.raises(ConfigError, match="seed: 1 -> 2"):
        RunStore.open(_config(tmp_path, seed=2), {})
    RunStore.open(_config(tmp_path, seed=2, force=True), {}).close()


def test_operational_keys_may_change_on_resume(tmp_path):
    RunStore.open(_config(tmp_path, num_worker=1, num_total_samples=5), {}).close()
    RunStore.open(_config(tmp_path, num_worker=2, num_total_samples=50), {}).close()


# --- one writer, one unit per sample, no overwritten files ---------------------------------------------------
def _record(sample_id: str, entry_point: str) -> dict:
    return {"id": sample_id, "entry_point": entry_point, "file": f"{entry_point}.py"}


def test_a_taken_file_name_is_a_collision_not_an_overwrite(tmp_path):
    config = _config(tmp_path)
    store = RunStore.open(config, {})
    store.accept("first = 1\n", _record("s0-0000000", "SynthModel_A_1"))
    with pytest.raises(ProgramFileCollision, match="holds the program of sample s0-0000000"):
        store.commit(
            [{"id": "s0-0000001", "final": False}], ("second = 2\n", _record("s0-0000001", "SynthModel_A_1"))
        )
    (config.output_path / "SynthModel_B_2.py").write_text(
        "mine = 'not the run'\n"
    )  # a file the run did not write
    assert "other contents" in store.collision("SynthModel_B_2.py", "other = 3\n", "s0-0000002")
    with pytest.raises(ProgramFileCollision):
        store.accept("other = 3\n", _record("s0-0000002", "SynthModel_B_2"))
    store.close()
    root = config.output_path
    assert (root / "SynthModel_A_1.py").read_text() == "first = 1\n"
    assert (root / "SynthModel_B_2.py").read_text() == "mine = 'not the run'\n"
    assert [r["id"] for r in read_jsonl(root / MANIFEST_FILE)] == ["s0-0000000"]
    assert list(read_jsonl(root / REJECTED_FILE)) == []  # the refused commit wrote nothing at all


def test_an_identical_leftover_file_is_adopted(tmp_path):
    config = _config(tmp_path)
    config.output_path.mkdir(parents=True)
    (config.output_path / "SynthModel_A_1.py").write_text(
        "same = 1\n"
    )  # e.g. left by an older version's crash
    store = RunStore.open(config, {})
    store.accept("same = 1\n", _record("s0-0000000", "SynthModel_A_1"))
    store.close()
    assert set(RunStore(config.output_path).load_state().accepted) == {"s0-0000000"}


def test_manifest_line_without_file_is_redone_into_one_line(tmp_path):
    config = _config(tmp_path)
    store = RunStore.open(config, {})
    store.commit([{"id": "s0-0000000", "final": False}], ("x = 1\n", _record("s0-0000000", "SynthModel_A_1")))
    store.close()
    (config.output_path / "SynthModel_A_1.py").unlink()  # removed by hand
    store = RunStore.open(config, {})
    assert store.load_state().done_ids == set()
    store.commit([{"id": "s0-0000000", "final": False}], ("x = 1\n", _record("s0-0000000", "SynthModel_A_1")))
    store.close()
    assert [r["id"] for r in read_jsonl(config.output_path / MANIFEST_FILE)] == ["s0-0000000"]
    assert [r["id"] for r in read_jsonl(config.output_path / REJECTED_FILE)] == ["s0-0000000"]


_KILL_AT = r"""
import os, signal, sys
from synth_modules.config import build_config
from synth_modules.run.store import RunStore

where, out = sys.argv[1], sys.argv[2]
store = RunStore.open(build_config(None, {"output_dir": out}), {})
append = store._manifest.append

def killed(record):
    if where == "after_manifest_line":
        append(record)
    os.kill(os.getpid(), signal.SIGKILL)

store._manifest.append = killed
rejections = [{"id": "s0-0000000", "attempt": a, "final": False} for a in (0, 1)]
store.commit(rejections, ("x = 1\n", {"id": "s0-0000000", "entry_point": "SynthModel_A_1", "file": "SynthModel_A_1.py"}))
"""


def _killed_commit(tmp_path, where: str):
    config = _config(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT, where, str(config.output_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return config


def test_kill_between_rejections_and_acceptance_leaves_nothing_half_done(tmp_path):
    config = _killed_commit(tmp_path, "before_manifest_line")
    root = config.output_path
    assert len(list(read_jsonl(root / REJECTED_FILE))) == 2  # the kill really fell between the two writes
    assert (root / STAGING_DIR / "SynthModel_A_1.py").exists() and not (root / "SynthModel_A_1.py").exists()
    store = RunStore.open(config, {})  # recovery: the half-committed sample is gone entirely
    assert store.load_state().done_ids == set()
    assert list(read_jsonl(root / REJECTED_FILE)) == [] and not (root / STAGING_DIR).exists()
    rejections = [{"id": "s0-0000000", "attempt": a, "final": False} for a in (0, 1)]
    store.commit(rejections, ("x = 1\n", _record("s0-0000000", "SynthModel_A_1")))  # redone once
    store.close()
    assert [r["attempt"] for r in read_jsonl(root / REJECTED_FILE)] == [0, 1]
    assert [r["id"] for r in read_jsonl(root / MANIFEST_FILE)] == ["s0-0000000"]


def test_kill_after_the_commit_point_is_rolled_forward(tmp_path):
    config = _killed_commit(tmp_path, "after_manifest_line")
    root = config.output_path
    assert not (root / "SynthModel_A_1.py").exists()  # killed before the staged file was renamed into place
    store = RunStore.open(config, {})
    assert set(store.load_state().accepted) == {"s0-0000000"}
    store.close()
    assert (root / "SynthModel_A_1.py").read_text() == "x = 1\n"
    assert len(list(read_jsonl(root / REJECTED_FILE))) == 2 and not (root / STAGING_DIR).exists()


def test_rename_is_followed_by_a_directory_fsync(tmp_path, monkeypatch):
    synced: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert synced == [False, True]  # the file's data, then the directory holding the renamed entry


def test_a_second_store_on_a_locked_directory_is_refused(tmp_path):
    config = _config(tmp_path)
    first = RunStore.open(config, {})
    with pytest.raises(DirectoryLockedError, match=f"pid {os.getpid()}"):
        RunStore.open(config, {})
    first.close()
    RunStore.open(config, {}).close()  # released on close
