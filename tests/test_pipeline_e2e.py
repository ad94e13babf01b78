"""End to end, offline: the popcorn command writes a run directory that resumes after kill -9 without losing or
duplicating programs, and whose programs pass `synth-torch validate` again in a fresh process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_ledgers import decisions, read_ledger

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "generate_synth_torch.py"
SAMPLES = 8


def _command(out: Path) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        ".parallel",
        f"num_total_samples={SAMPLES}",
        "num_worker=2",
        "seed=11",
        f"output_dir={out}",
        "progress=false",
    ]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "programs"
    proc = subprocess.run(
        _command(out), cwd=tmp_path_factory.getbasetemp(), capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_offline_run_writes_the_run_directory(clean_run: Path):
    accepted, rejected = decisions(clean_run)
    assert len(accepted) + len(rejected) == SAMPLES
    assert len(set(accepted)) == len(accepted)
    assert len(accepted) >= SAMPLES - 1
    run = json.loads((clean_run / "run.json").read_text())
    assert run["config"]["num_total_samples"] == SAMPLES
    assert run["versions"]["torch"]
    stats = json.loads((clean_run / "stats.json").read_text())
    assert stats["accepted"] == len(accepted)
    for record in read_ledger(clean_run / "manifest.jsonl"):
        path = clean_run / record["file"]
        assert path.stem == record["entry_point"]
        assert f"class {record['entry_point']}(nn.Module)" in path.read_text()
        for key in (
            "sampled_ops",
            "final_pattern",
            "backend",
            "model",
            "seed",
            "prompt_sha256",
            "input_shapes",
            "output_shapes",
            "timings",
            "checks",
        ):
            assert key in record, key


@pytest.mark.slow
def test_accepted_programs_validate_again_in_a_fresh_process(clean_run: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "synth_modules.cli", "validate", str(clean_run), "--json", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    accepted, _ = decisions(clean_run)
    assert len(rows) == len(accepted)
    assert all(row["ok"] for row in rows), [row for row in rows if not row["ok"]]
    assert proc.returncode == 0


@pytest.mark.slow
def test_kill_minus_nine_then_resume_loses_and_duplicates_nothing(clean_run: Path, tmp_path: Path):
    out = tmp_path / "programs"
    proc = subprocess.Popen(
        _command(out),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while time.time() < deadline and len(read_ledger(out / "manifest.jsonl")) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before, _ = decisions(out)
    assert 2 <= len(before) < SAMPLES

    rerun = subprocess.run(_command(out), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already done" in rerun.stderr
    accepted, rejected = decisions(out)
    assert len(accepted) == len(set(accepted))
    assert set(before) <= set(accepted)
    assert len(accepted) + len(rejected) == SAMPLES
    # Same seed and config: the interrupted run ends with exactly the uninterrupted run's programs.
    clean_accepted, _ = decisions(clean_run)
    assert sorted(accepted) == sorted(clean_accepted)
    programs = sorted(p.name for p in out.glob("SynthModel_*.py"))
    assert programs == sorted(p.name for p in clean_run.glob("SynthModel_*.py"))
    for name in programs:
        assert (out / name).read_text() == (clean_run / name).read_text()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_resume_with_another_config_is_refused(tmp_path: Path):
    out = tmp_path / "programs"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config": {"seed": 1, "p_value": 0.5}}))
    proc = subprocess.run([*_command(out)[:-1]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "different config" in proc.stderr
