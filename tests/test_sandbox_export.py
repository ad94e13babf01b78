"""export-pairs' workers run accepted programs in the same sandbox as validation (static checks bypassed).

The worker confines itself before it imports torch; programs get an allow-listed environment (the secrets set
here never reach them), may write only in their own scratch directory, cannot signal the pool, and a program
that patches torch or leaves a thread or process behind is rejected as `unsafe_code` and its worker replaced.
On CPU (CI) the always-armed corpus programs show this; on a GPU the CUDA-armed ones do too.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from pathlib import Path

import psutil
import pytest
import torch
from sandbox_corpus import CORPUS_DIR, ESCAPE_MARKER_GLOB, SLEEPER_ARG, load_corpus

from synth_modules.export.gpu_workers import WorkerPool
from synth_modules.sandbox import landlock

SECRET = f"sk-sandbox-test-{uuid.uuid4().hex}"
HAS_LANDLOCK = landlock.abi_version() >= 6
PATCH_THEN_FAIL = """
import subprocess
import threading
import time

import torch
import torch.nn as nn

torch.allclose = lambda *args, **kwargs: True
threading.Thread(target=time.sleep, args=(4242,), daemon=True).start()
subprocess.Popen(["sleep", "4242"], start_new_session=True)


class Model(nn.Module):
    def forward(self, x):
        raise RuntimeError("fails after patching its worker")


def get_inputs():
    return [torch.randn(2, 3)]


def get_init_inputs():
    return [[], {}]
"""


def _sleepers() -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if (p.info.get("cmdline") or [])[:2] == ["sleep", SLEEPER_ARG]
    ]


@pytest.fixture()
def secrets(monkeypatch):
    for name in ("HF_TOKEN", "OPENAI_API_KEY", "MY_SERVICE_PW", "DATABASE_URL"):
        monkeypatch.setenv(name, SECRET)
    return SECRET


def _export(run_dir: Path, names: list[str], device: str = "cpu", sources: dict[str, str] | None = None):
    for name in names:
        shutil.copy(CORPUS_DIR / f"{name}.py", run_dir / f"{name}.py")
    for name, source in (sources or {}).items():
        (run_dir / f"{name}.py").write_text(source)
    tasks = [
        {"id": n, "path": str(run_dir / f"{n}.py"), "entry_point": "Model"}
        for n in [*names, *(sources or {})]
    ]
    settings = {"device": device, "warmup": device != "cpu"}
    with WorkerPool(
        1, [None], settings, timeout_s=120.0, log_dir=run_dir / "logs", read_roots=[str(run_dir)]
    ) as pool:
        results = {r["id"]: r for r in pool.run(tasks)}
    return results, pool


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LANDLOCK, reason="containment needs Landlock; without it the pool refuses")
def test_export_workers_contain_escapes_secrets_signals_and_patches(tmp_path, secrets):
    for marker in glob.glob(ESCAPE_MARKER_GLOB):
        os.remove(marker)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("")
    names = ["env_secret", "file_write", "kill_parent", "subclasses_escape"]
    results, pool = _export(tmp_path, names, sources={"patch_then_fail": PATCH_THEN_FAIL})
    assert "contained: no secret visible" in results["env_secret"]["message"]
    assert "Permission denied" in results["file_write"]["message"]
    assert "Operation not permitted" in results["kill_parent"]["message"]  # the pool survived, too
    assert "contained" in results["subclasses_escape"]["message"]
    patched = results["patch_then_fail"]
    assert patched["category"] == "unsafe_code"
    assert (
        "allclose" in patched["message"]
        and "thread" in patched["message"]
        and "process" in patched["message"]
    )
    assert pool.stats.integrity_restarts == 1 and pool.stats.crashed == 0
    assert not glob.glob(ESCAPE_MARKER_GLOB) and manifest.read_text() == ""
    assert all(secrets not in str(r) for r in results.values())
    assert not _sleepers()
    assert pool.stats.isolation["landlock"] == landlock.abi_version()
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log"))
    assert secrets not in logs


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_armed_programs_are_contained_in_export(tmp_path, secrets):
    for marker in glob.glob(ESCAPE_MARKER_GLOB):
        os.remove(marker)
    armed = [p.name for p in load_corpus() if p.armed == "cuda"]
    results, pool = _export(tmp_path, [*armed, "good_linear_softmax"], device="cuda")
    assert pool.stats.integrity_restarts == 2 and pool.stats.crashed == 0
    assert (
        "contained" in results["cuda_env_dump"]["message"]
        and "HF_TOKEN" not in results["cuda_env_dump"]["message"]
    )
    assert "contained: no secret visible" in results["cuda_secret_scan"]["message"]
    for name in ("cuda_daemon", "cuda_patch_verifier"):
        assert results[name]["category"] == "unsafe_code", results[name]
    assert results["good_linear_softmax"]["ok"], results["good_linear_softmax"]
    assert not glob.glob(ESCAPE_MARKER_GLOB) and not (tmp_path / "synth_sandbox_escape_cuda_write").exists()
    assert all(secrets not in str(r) for r in results.values())
    assert not _sleepers()


@pytest.mark.skipif(not HAS_LANDLOCK, reason="the worker refuses without Landlock")
def test_spawn_isolated_serves_requests_and_a_timeout_kills_its_whole_tree(tmp_path, secrets):
    """The API the kernel evaluator uses: a self-confining worker, JSON requests, kill with verified reaping."""
    from synth_modules.sandbox.spawn import WorkerFailure, spawn_isolated

    (tmp_path / "Broken.py").write_text("raise RuntimeError('broken on import')\n")
    (tmp_path / "Hang.py").write_text(
        "import subprocess, time\nsubprocess.Popen(['sleep', '4242'], start_new_session=True)\ntime.sleep(600)\n"
    )
    worker = spawn_isolated(
        "synth_modules.export.worker", {"device": "cpu", "warmup": False}, read_roots=[str(tmp_path)]
    )
    try:
        ready = worker.wait_ready(timeout=300)
        assert ready["isolation"]["landlock"] == landlock.abi_version() and ready["info"]["gpu_name"] == "cpu"
        answer = worker.call({"id": "b", "path": str(tmp_path / "Broken.py"), "entry_point": "Broken"}, 60)
        assert answer["reply"]["category"] == "capture_failure" and answer["integrity"] == []
        tree_before = worker.tree()
        with pytest.raises(WorkerFailure):
            worker.call({"id": "h", "path": str(tmp_path / "Hang.py"), "entry_point": "Hang"}, 5)
        assert not worker.alive() and not any(p.is_running() and p.status() != "zombie" for p in tree_before)
        assert not _sleepers()
    finally:
        worker.close()
    assert not os.path.exists(worker.base_dir)
