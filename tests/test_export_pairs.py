"""export-pairs: the no-CUDA refusal, the worker pool's crash/timeout isolation, and (on a GPU) the real export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synth_modules.export.gpu_workers import WorkerPool
from synth_modules.export.pairs import ExportSettings, export_pairs, read_pairs
from synth_modules.export.programs import load_programs
from synth_modules.export.schema import COLUMN_NAMES, check_row
from synth_modules.run.store import read_jsonl
from synth_modules.sandbox import landlock

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "tests" / "fixtures" / "programs"
UNSAFE = landlock.abi_version() == 0  # a CI kernel without Landlock: the pool runs only when told to


def test_export_pairs_without_cuda_exits_nonzero_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides GPUs on a GPU machine too
    proc = subprocess.run(
        [sys.executable, "-m", "synth_modules.export.cli", "export-pairs", str(PROGRAMS), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "needs a CUDA GPU" in proc.stderr and "Triton" in proc.stderr
    assert not out.exists()  # refused before creating anything


def test_export_pairs_rejects_a_cpu_device(tmp_path: Path) -> None:
    from synth_modules.export.cli import run_export_pairs

    assert run_export_pairs(PROGRAMS, tmp_path / "pairs", device="cpu") == 2
    assert not (tmp_path / "pairs").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_pool_isolates_crashes_and_timeouts(tmp_path: Path) -> None:
    """A program that kills its worker or hangs costs only itself; the pool restarts the worker and goes on."""
    crash = _write(tmp_path / "Crash.py", "import os\nos._exit(3)\n")
    hang = _write(tmp_path / "Hang.py", "import time\ntime.sleep(600)\n")
    broken = _write(tmp_path / "Broken.py", "raise RuntimeError('broken on import')\n")
    tasks = [{"id": p.stem, "path": str(p), "entry_point": p.stem} for p in (crash, hang, broken)]
    with WorkerPool(
        1,
        [None],
        {"device": "cpu", "warmup": False},
        timeout_s=15.0,
        log_dir=tmp_path / "logs",
        read_roots=[str(tmp_path)],
        allow_unsandboxed=UNSAFE,
    ) as pool:
        results = {r["id"]: r for r in pool.run(tasks)}
    assert {k: r["category"] for k, r in results.items()} == {
        "Crash": "crash",
        "Hang": "timeout",
        "Broken": "capture_failure",
    }
    assert "exit code 3" in results["Crash"]["message"]
    assert "broken on import" in results["Broken"]["message"]
    assert pool.stats.started_workers == 3 and pool.stats.crashed == 1 and pool.stats.timed_out == 1


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_export_pairs_on_gpu(tmp_path: Path) -> None:
    summary = export_pairs(PROGRAMS, tmp_path, ExportSettings(progress=False))
    rejected = {r["entry_point"]: r["category"] for r in read_jsonl(tmp_path / "rejected.jsonl")}
    assert rejected == {
        "SynthModel_Relu_Sum_5aee00cf": "graph_break",
        "SynthModel_Linear_06e30b7c": "unsupported",
    }
    programs = load_programs(PROGRAMS)
    assert summary.verified == len(programs) - 2 == summary.total_pairs
    for row in read_pairs(tmp_path):
        check_row(row)
        assert set(row) == set(COLUMN_NAMES)
        assert row["kernel_count"] >= 1 and row["gpu_name"] and row["max_rel_error"] <= 2e-4  # the fp32 rule
        assert (
            "triton_heuristics" not in row["triton_code"]
            and f"class {row['entry_point']}New" in row["triton_code"]
        )
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["counts"]["pairs"] == summary.verified and meta["counts"]["rejected"]["graph_break"] == 1
    again = export_pairs(PROGRAMS, tmp_path, ExportSettings(progress=False))  # resumes: nothing left to do
    assert again.attempted == 0 and again.total_pairs == summary.verified


@pytest.mark.slow
def test_capture_names_graph_inputs_by_identity_on_cpu() -> None:
    """Inductor on CPU writes C++ (so no launches), but the graph's argument order is named the same way."""
    from synth_modules.export.capture import capture_inductor
    from synth_modules.export.verify import build_original, fresh_inputs
    from synth_modules.sandbox.loading import import_file

    torch.set_num_threads(1)
    entry_point = "SynthModel_Bmm_Add_Sigmoid_f101cbc6"
    program = import_file(PROGRAMS / f"{entry_point}.py")
    model = build_original(program, entry_point, "cpu")
    capture = capture_inductor(model, fresh_inputs(program, 0, "cpu"))
    assert capture.call_args == ["input:0", "input:1", "param:bias"]  # Dynamo's order: a, b, then the bias
    assert capture.launches == {} and "def call(" in capture.raw_code
