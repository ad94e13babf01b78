"""export-pairs resume: changed verification settings are refused before any work; a crash or timeout gets one
more try in a fresh worker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from synth_modules.export.cli import run_export_pairs
from synth_modules.export.gpu_workers import WorkerPool
from synth_modules.export.pairs import (
    META_FILE,
    CudaRequiredError,
    ExportSettings,
    ResumeSettingsError,
    export_pairs,
    record_verification_settings,
    run_with_retry,
)
from synth_modules.export.verify import CheckSettings

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "pairs"
PROGRAMS = ROOT / "tests" / "fixtures" / "programs"


def _pairs_dir(tmp_path: Path) -> Path:
    out = tmp_path / "pairs"
    shutil.copytree(PAIRS, out)
    return out


def test_resume_with_other_verification_settings_is_refused(tmp_path: Path, capsys) -> None:
    out = _pairs_dir(tmp_path)  # verified by the old rule (fixed rtol/atol 1e-3, default weights)
    with pytest.raises(ResumeSettingsError, match="verified with other settings"):
        export_pairs(PROGRAMS, out, ExportSettings(device="cpu", progress=False))
    assert run_export_pairs(PROGRAMS, out, device="cpu", progress=False) == 2
    assert "--force" in capsys.readouterr().err
    with pytest.raises(CudaRequiredError):  # forced: past the settings check, stopped by the next one
        export_pairs(PROGRAMS, out, ExportSettings(device="cpu", progress=False, force=True))


def test_settings_recorded_before_work_must_match_on_resume(tmp_path: Path) -> None:
    out = _pairs_dir(tmp_path)
    record_verification_settings(
        out, ExportSettings()
    )  # what an export writes into meta.json before its first pair
    meta = json.loads((out / META_FILE).read_text())
    assert meta["verification"]["tolerances"]["float32"] == {"rtol": 1e-4, "scale_atol": 1e-4}
    assert meta["counts"]["pairs"] == 9  # the rest of meta.json is kept
    with pytest.raises(CudaRequiredError):  # same settings: the resume may go on
        export_pairs(PROGRAMS, out, ExportSettings(device="cpu", progress=False))
    for changed in (CheckSettings(seeds=(1, 2)), CheckSettings(weight_seed=8)):
        with pytest.raises(ResumeSettingsError):
            export_pairs(PROGRAMS, out, ExportSettings(device="cpu", progress=False, check=changed))
    (out / "pairs.jsonl").write_text("")
    (out / "rejected.jsonl").write_text("")
    with pytest.raises(CudaRequiredError):  # nothing verified yet: nothing to disagree with
        export_pairs(
            PROGRAMS, out, ExportSettings(device="cpu", progress=False, check=CheckSettings(seeds=(9,)))
        )


def _batches(outcomes: dict[str, list[dict]]):
    """A batch runner answering each task with its next scripted outcome; records the batches it was given."""
    calls: list[list[str]] = []

    def run_batch(batch: list[dict]):
        calls.append([t["id"] for t in batch])
        for task in batch:
            yield {"id": task["id"], **outcomes[task["id"]].pop(0)}

    return run_batch, calls


def test_run_with_retry_retries_crashes_and_timeouts_once() -> None:
    crash, timeout = (
        {"ok": False, "category": "crash", "message": "worker died"},
        {
            "ok": False,
            "category": "timeout",
            "message": "no result within 180 s",
        },
    )
    run_batch, calls = _batches(
        {
            "flaky": [crash, {"ok": True}],
            "hangs": [timeout, timeout],
            "wrong": [{"ok": False, "category": "mismatch", "message": "values differ"}],
            "fine": [{"ok": True}],
        }
    )
    tasks = [{"id": i} for i in ("flaky", "hangs", "wrong", "fine")]
    results = {r["id"]: r for r in run_with_retry(run_batch, tasks)}
    assert calls == [
        ["flaky", "hangs", "wrong", "fine"],
        ["flaky", "hangs"],
    ]  # one retry batch, transient only
    assert results["flaky"]["ok"] and results["flaky"]["retried"]
    assert (
        results["hangs"]["category"] == "timeout"
        and "retried once; first attempt: timeout" in results["hangs"]["message"]
    )
    assert results["wrong"]["category"] == "mismatch" and "retried" not in results["wrong"]
    assert results["fine"]["ok"]


@pytest.mark.slow
def test_a_transient_worker_crash_is_retried_in_a_fresh_worker(tmp_path: Path) -> None:
    """Real worker processes: the first attempt kills its worker; by the retry the cause is gone."""
    flaky = tmp_path / "Flaky.py"
    flaky.write_text("import os\nos._exit(3)\n")
    always = tmp_path / "Always.py"
    always.write_text("import os\nos._exit(4)\n")
    tasks = [{"id": p.stem, "path": str(p), "entry_point": p.stem} for p in (flaky, always)]
    batches = 0

    def run_batch(batch: list[dict]):
        nonlocal batches
        if batches == 1:
            flaky.write_text("raise RuntimeError('imports now, fails for an ordinary reason')\n")
        batches += 1
        with WorkerPool(1, [None], {"device": "cpu", "warmup": False}, 60.0, tmp_path / "logs") as pool:
            yield from pool.run(batch)

    results = {r["id"]: r for r in run_with_retry(run_batch, tasks)}
    assert batches == 2
    assert results["Flaky"]["category"] == "capture_failure" and results["Flaky"]["retried"]
    assert "first attempt: crash" in results["Flaky"]["message"]
    assert results["Always"]["category"] == "crash" and "exit code 4" in results["Always"]["message"]
