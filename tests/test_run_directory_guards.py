"""A run directory has one writer and never loses a file to a name collision, checked with real runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_ledgers import read_ledger

from synth_modules.backends.registry import create_backend
from synth_modules.config import build_config
from synth_modules.program import make_entry_point
from synth_modules.run.pipeline import create_sampler
from synth_modules.types import GenerationRequest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "generate_synth_torch.py"


def _command(out: Path, samples: int) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        f"num_total_samples={samples}",
        "num_worker=1",
        "seed=5",
        f"output_dir={out}",
        "progress=false",
    ]


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # the run shuts its sandbox down and exits
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_second_concurrent_run_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "programs"
    first = subprocess.Popen(
        _command(out, 500),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "run.json").exists():
            time.sleep(0.1)
        assert (out / ".lock").read_text().split() == [str(first.pid)]
        run_json = (out / "run.json").read_bytes()
        second = subprocess.run(_command(out, 500), cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert "in use by another run" in second.stderr and f"pid {first.pid}" in second.stderr
        assert (out / "run.json").read_bytes() == run_json  # refused before touching anything
        assert first.poll() is None  # and the first run goes on
    finally:
        _stop(first)
    manifest = read_ledger(out / "manifest.jsonl")
    assert len({r["id"] for r in manifest}) == len(manifest)


@pytest.mark.slow
def test_a_file_name_taken_by_a_foreign_file_is_a_rejection(tmp_path: Path) -> None:
    out = tmp_path / "programs"
    config = build_config(None, {"num_total_samples": 2, "seed": 5, "output_dir": str(out)})
    sample = create_sampler(config).sample(0)
    request = GenerationRequest(
        sample=sample, entry_point=make_entry_point(sample.sampled_ops, sample.id), attempt=0
    )
    name = asyncio.run(create_backend(config).generate(request)).entry_point  # the composer is deterministic
    out.mkdir()
    (out / f"{name}.py").write_text("# a user's own file, not to be overwritten\n")
    proc = subprocess.run(_command(out, 2), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / f"{name}.py").read_text() == "# a user's own file, not to be overwritten\n"
    rejected = {r["id"]: r for r in read_ledger(out / "rejected.jsonl")}
    assert rejected[sample.id]["category"] == "name_collision" and rejected[sample.id]["final"]
    assert name not in {r["entry_point"] for r in read_ledger(out / "manifest.jsonl")}
    assert len(read_ledger(out / "manifest.jsonl")) == 1  # the other sample is accepted as usual
