"""Pair verification: wrong Triton-side modules are rejected (fixture pairs in Triton's CPU interpreter), and the
verification settings travel intact to the workers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synth_modules.export.verify import CheckSettings, compare_outputs
from synth_modules.sandbox.compare import Tolerance

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "pairs"
CASES = {
    "returns_zeros",
    "returns_input",
    "swaps_batchnorm_weight_and_running_var",
    "swaps_groupnorm_weight_and_bias",
    "drops_zero_initialised_bias",
    "drops_conv_bias",
}


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_wrong_new_modules_are_rejected_in_the_triton_interpreter() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "triton_cpu_check.py"), str(PAIRS), "--tamper"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["case"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(results) == CASES
    for case, result in results.items():
        assert result["honest_ok"], case  # the same pair, untouched, verifies: the rejection is the tamper's
        assert not result["ok"] and "values differ" in result["reason"], result
    # With the default initialisation (a zero bias) the dropped bias was invisible: randomized weights catch it.
    assert results["drops_zero_initialised_bias"]["default_weights_ok"]


def test_check_settings_round_trip_and_record_the_table() -> None:
    default = CheckSettings()
    data = default.to_dict()
    assert data["tolerances"]["float32"] == {"rtol": 1e-4, "scale_atol": 1e-4}
    assert CheckSettings.from_dict(json.loads(json.dumps(data))) == default
    custom = CheckSettings(seeds=(5,), weight_seed=11, tolerance=Tolerance(1e-3, 2e-3))
    assert CheckSettings.from_dict(custom.to_dict()) == custom
    assert custom.to_dict()["tolerances"] == {"all": {"rtol": 1e-3, "scale_atol": 2e-3}}


def test_output_structure_must_match() -> None:
    x = torch.randn(3)
    assert compare_outputs((x, x), (x, x)).ok
    assert not compare_outputs((x, x), [x, x]).ok  # tuple vs list
    assert not compare_outputs((x,), (x, x)).ok
    assert "not tensors" in compare_outputs(x, 3.0).reason


def test_dataset_card_states_the_scaled_rule(tmp_path: Path) -> None:
    import shutil

    from synth_modules.export.hf import export_hf
    from synth_modules.export.pairs import ExportSettings, record_verification_settings

    pairs = tmp_path / "pairs"
    shutil.copytree(PAIRS, pairs)
    record_verification_settings(pairs, ExportSettings())
    result = export_hf(pairs, tmp_path / "hf")
    card = result.card.read_text()
    assert "weights randomized (seed 7)" in card and "float32 rtol 0.0001 + 0.0001 x max |output|" in card
