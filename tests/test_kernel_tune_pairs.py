"""tune-pairs output: tuned_* columns chosen from verified measurements only, carried by export-hf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel_search.spaces.triton_launch import TritonLaunchSpace
from kernel_search.store import DB_FILE, SearchDatabase, source_hash
from kernel_search.tuning.pair_targets import TUNED_COLUMNS, write_tuned_pairs
from kernel_search.tuning.search_space import ConfigSpace
from synth_modules.export.hf import export_hf
from synth_modules.export.schema import COLUMN_NAMES

PAIRS = Path(__file__).resolve().parent / "fixtures" / "pairs"
ROWS = [json.loads(line) for line in (PAIRS / "pairs.jsonl").read_text().splitlines()]


def _measured(runtime_us: float, correct: bool = True) -> dict:
    # The evaluator's record shape (EvalResult.to_dict()); GPU runs write these, CPU tests cannot.
    category = "ok" if correct else "mismatch"
    return {"category": category, "correct": correct, "runtime_us": runtime_us, "speedup_vs_eager": 10 / runtime_us,
            "speedup_vs_compile": 9 / runtime_us}  # fmt: skip


def test_tuned_columns_only_from_verified_faster_variants(tmp_path, monkeypatch):
    out = tmp_path / "tuned"
    fast, wrong = ROWS[0], ROWS[1]
    best: dict = {"tasks": {}}
    with SearchDatabase(out / DB_FILE) as db:
        for row, variant_us, variant_ok in ((fast, 5.0, True), (wrong, 1.0, False)):
            space = TritonLaunchSpace(row)
            configs = ConfigSpace(space.parameters(), space.is_valid)
            default = configs.default_config()
            variant = configs.neighbours(default)[0]
            db.add_measurement(source_hash(space.render(default)), row["id"], _measured(10.0))
            db.add_measurement(
                source_hash(space.render(variant)), row["id"], _measured(variant_us, variant_ok)
            )
            best["tasks"][row["id"]] = {"best_config": variant, "best_score": 2.0}
    write_tuned_pairs(PAIRS, out, best)
    rows = {r["id"]: r for r in map(json.loads, (out / "pairs.jsonl").read_text().splitlines())}
    assert rows[fast["id"]]["tuned_speedup_vs_default"] == pytest.approx(2.0)
    assert rows[fast["id"]]["tuned_triton_code"] != fast["triton_code"]
    assert rows[wrong["id"]]["tuned_speedup_vs_default"] is None  # a wrong variant is never the tuned code
    assert all(rows[r["id"]]["tuned_runtime_us"] is None for r in ROWS[2:])  # never measured: left null
    summary = json.loads((out / "tuned_pairs.json").read_text())
    assert summary["faster"] == 1 and summary["speedups"] == [2.0]

    import datasets

    export_hf(out, tmp_path / "hf")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    loaded = datasets.load_dataset(str(tmp_path / "hf"), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.column_names == [*COLUMN_NAMES, *TUNED_COLUMNS]
    record = next(r for r in loaded if r["id"] == fast["id"])
    assert record["tuned_speedup_vs_default"] == pytest.approx(2.0)
    assert json.loads(record["tuned_launch_config"]) == best["tasks"][fast["id"]]["best_config"]
