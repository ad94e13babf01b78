"""Run store: atomic files, durable ledgers that survive a torn write, refusal of a different config."""

from __future__ import annotations

import json

import pytest

from synth_modules.config import ConfigError, build_config
from synth_modules.run.store import MANIFEST_FILE, REJECTED_FILE, RUN_FILE, RunStore, read_jsonl


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
