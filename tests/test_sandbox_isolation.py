"""The process sandbox on its own: static checks bypassed (test-only option), so malicious code really runs.

Nothing may escape: no file outside the job directory, no secret, no process left behind, no state leaking into
the next program, and a worker that dies costs one `crash` verdict, not the run. Compile is off here to keep
the worker warm-up cheap; tests/test_sandbox.py covers the compile path.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from sandbox_corpus import ESCAPE_MARKER_GLOB, SLEEPER_ARG, load_corpus, outcome, validate_corpus

from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob, environment, landlock, limits
from synth_modules.sandbox.isolation import UNSAFE_ENV, UNSAFE_FLAG, SandboxUnavailableError

SECRET = f"sk-sandbox-test-{uuid.uuid4().hex}"
CORPUS = load_corpus()
UNCHECKED = SandboxOptions(timeout_s=120, memory_limit_mb=1024, static_checks=False, compile=False)
HAS_LANDLOCK = landlock.abi_version() >= 6  # writes, TCP, signals and /proc/<pid>/environ all confined
needs_landlock = pytest.mark.skipif(not HAS_LANDLOCK, reason="containment needs Landlock ABI >= 6")

ROOT = Path(__file__).resolve().parents[1]
NO_LANDLOCK = Path(__file__).parent / "no_landlock.py"
GOOD_RELU = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        return torch.relu(self.fc(x)) + x.relu()


def get_inputs():
    return [torch.randn(3, 6)]


def get_init_inputs():
    return [[], {}]
"""

GRANDCHILD_THEN_LOOP = """
import subprocess
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        subprocess.Popen(["sleep", "4243"])
        while True:
            pass


def get_inputs():
    return [torch.randn(2, 3)]


def get_init_inputs():
    return [[], {}]
"""

SLOW = GRANDCHILD_THEN_LOOP.replace('subprocess.Popen(["sleep", "4243"])', "pass")


def _sleepers(arg: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if cmdline[:1] == ["sleep"] and arg in cmdline:
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def secret_env():
    os.environ["SECRET_API_KEY"] = SECRET
    os.environ["HF_TOKEN"] = SECRET
    yield SECRET
    os.environ.pop("SECRET_API_KEY", None)
    os.environ.pop("HF_TOKEN", None)


@pytest.fixture(scope="module")
def pool(secret_env):
    with SandboxPool(num_workers=1, options=UNCHECKED) as pool:
        yield pool


@pytest.fixture(scope="module")
def corpus_verdicts(pool):
    for marker in glob.glob(ESCAPE_MARKER_GLOB):
        os.remove(marker)
    return validate_corpus(pool, CORPUS)


@pytest.mark.parametrize("item", CORPUS, ids=lambda p: p.name)
def test_corpus_contained_without_static_checks(item, corpus_verdicts):
    if item.needs_landlock and not HAS_LANDLOCK:
        pytest.skip(
            "containment needs Landlock; without it the sandbox refuses (test_refuses_without_landlock)"
        )
    verdict = corpus_verdicts[item.name]
    message = f"{item.name}: {verdict.stage} {verdict.category} {verdict.message}"
    assert outcome(verdict) == item.expect_unchecked, message
    assert "ESCAPED" not in verdict.message


@needs_landlock
def test_no_file_escaped(corpus_verdicts):
    assert not glob.glob(ESCAPE_MARKER_GLOB)
    assert "Permission denied" in corpus_verdicts["file_write"].message
    assert "contained" in corpus_verdicts["os_system"].message
    assert "contained" in corpus_verdicts["subclasses_escape"].message


@needs_landlock
def test_no_secret_readable(corpus_verdicts, secret_env):
    assert "contained: no secret visible" in corpus_verdicts["env_secret"].message
    for verdict in corpus_verdicts.values():
        assert secret_env not in verdict.message


def test_forged_verdicts_are_caught_at_runtime(corpus_verdicts):
    """Without static checks, a program that replaces what the judge uses is still unsafe_code."""
    for name, replaced in (
        ("forge_allclose", "torch.allclose"),
        ("forge_tensor_method", "Tensor.abs"),
        ("forge_module_class", "Module.eval"),
        ("forge_sandbox_compare", "synth_modules.sandbox.compare.identical"),
        ("monkeypatch_torch", "torch.relu"),
        ("forge_builtins", "builtins.sum"),
    ):
        verdict = corpus_verdicts[name]
        assert verdict.category == "unsafe_code", (name, verdict.message)
        assert "replaced what the sandbox judges with" in verdict.message and replaced in verdict.message
    subclass = corpus_verdicts["forge_tensor_subclass"]
    assert subclass.category == "unsafe_code" and "Agreeable" in subclass.message


def test_string_evaluation_runs_only_inside_the_sandbox(corpus_verdicts):
    """What annotations, TorchScript and sympy evaluate is real code: contained here, refused statically."""
    for name in ("type_hints_eval", "sympify_eval"):
        assert "Permission denied" in corpus_verdicts[name].message, (name, corpus_verdicts[name].message)
    assert "contained" in corpus_verdicts["star_import_type_hints"].message


@needs_landlock
def test_parent_cannot_be_killed_and_segfault_is_a_crash(pool, corpus_verdicts):
    assert corpus_verdicts["kill_parent"].category == "eager_error"
    assert pool.restarts == 0
    assert "SIGSEGV" in corpus_verdicts["segfault_ctypes"].message
    assert "code 7" in corpus_verdicts["os_exit"].message


def test_no_process_left_behind(corpus_verdicts):
    assert corpus_verdicts["fork_sleeper"].ok and corpus_verdicts["daemon_sleeper"].ok
    assert not _sleepers(SLEEPER_ARG)


def test_monkeypatching_does_not_leak_into_the_next_program(pool):
    patcher = next(item for item in CORPUS if item.name == "monkeypatch_torch")
    first = pool.submit(patcher.job())
    second = pool.submit(ValidationJob(id="after-patch", source=GOOD_RELU))  # one worker: same process next
    # the patch itself is caught (verdict integrity); what matters here is that the next program is unaffected
    assert first.result().category == "unsafe_code"
    verdict = second.result()
    assert verdict.ok, verdict.message


def test_timeout_kills_the_whole_process_group(pool):
    verdict = pool.submit(
        ValidationJob(id="grandchild", source=GRANDCHILD_THEN_LOOP, extra={"timeout_s": 4})
    ).result()
    assert verdict.category == "timeout" and verdict.stage == "eager"
    assert not _sleepers("4243")


def test_worker_death_costs_one_job_and_the_worker_is_replaced(pool):
    before = pool.restarts
    future = pool.submit(ValidationJob(id="slow", source=SLOW, extra={"timeout_s": 60}))
    deadline = time.monotonic() + 120
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    verdict = future.result(timeout=120)
    assert verdict.category == "crash" and "worker" in verdict.message
    assert pool.restarts == before + 1
    after = pool.submit(ValidationJob(id="after-death", source=GOOD_RELU)).result(timeout=600)
    assert after.ok, after.message
    assert pool.worker_pids() and pool.worker_pids()[0] != pid


def test_isolation_layers_reported(pool):
    pool.submit(ValidationJob(id="layers", source=GOOD_RELU)).result()
    layers = pool.isolation
    assert layers["landlock"] == landlock.abi_version()
    assert layers["memory"] == "rlimit-as"
    if os.geteuid() == 0:
        assert layers["user"] in ("uid 65534", "uid 0 without capabilities")
        assert layers["netns"] is True


def test_close_leaves_no_process_and_no_directory(secret_env):
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    pool = SandboxPool(num_workers=1, options=UNCHECKED)
    assert pool.submit(ValidationJob(id="quick", source=GOOD_RELU)).result().ok
    base_dirs = [w.base_dir for w in pool._workers.values()]
    pool.close()
    assert {p.pid for p in me.children(recursive=True)} <= before
    assert base_dirs and not any(os.path.exists(d) for d in base_dirs)


def test_fresh_interpreter_mode(secret_env):
    options = SandboxOptions(timeout_s=120, static_checks=False, compile=False, warm=False)
    with SandboxPool(num_workers=1, options=options) as pool:
        verdict = pool.submit(ValidationJob(id="fresh", source=GOOD_RELU)).result()
        assert verdict.ok, verdict.message
        assert not pool.worker_pids()  # the per-program interpreter is gone


# --- single layers, without the pool --------------------------------------------------------------------------
def test_environment_is_an_allow_list():
    env = {"PATH": "/usr/bin", "OPENAI_API_KEY": "x", "HF_TOKEN": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "MY_SERVICE_PW": "x", "DB_URL": "postgres://u:pw@h/db", "CUDA_VISIBLE_DEVICES": "0",
           "TRITON_TOKEN": "x", "TORCHINDUCTOR_MAX_AUTOTUNE": "1", "HOME": "/root", "LC_ALL": "C.UTF-8"}  # fmt: skip
    sandboxed = environment.sandbox_environment("/tmp/job", env)
    assert {k: sandboxed[k] for k in env if k in sandboxed} == {
        "PATH": "/usr/bin", "CUDA_VISIBLE_DEVICES": "0", "TORCHINDUCTOR_MAX_AUTOTUNE": "1",
        "HOME": "/tmp/job", "LC_ALL": "C.UTF-8",
    }  # fmt: skip
    assert sandboxed["TMPDIR"] == "/tmp/job" and "x" not in sandboxed.values()


def test_refuses_without_landlock(monkeypatch, capsys):
    """Fail-closed: no Landlock, no sandbox, unless the user passes the unsafe flag (which warns)."""
    monkeypatch.setattr(landlock, "abi_version", lambda: 0)
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    with pytest.raises(SandboxUnavailableError, match=UNSAFE_FLAG):
        SandboxPool(num_workers=1, options=UNCHECKED)
    import synth_modules.sandbox.isolation as isolation

    monkeypatch.setattr(isolation, "_warned", False)
    allowed = dataclasses.replace(UNCHECKED, allow_unsandboxed=True)
    assert isolation.require_landlock(allowed.allow_unsandboxed) == 0
    assert "WARNING" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_LANDLOCK or os.uname().machine != "x86_64", reason="needs Landlock to remove")
def test_refusal_and_unsafe_flag_on_a_kernel_without_landlock(tmp_path):
    """Landlock really unavailable (a seccomp filter makes its syscalls fail with ENOSYS, as an old kernel
    does): `synth-torch validate` refuses before any work; with the flag it warns and still runs confined
    in every other way, and the child reports that no Landlock was applied."""
    program = tmp_path / "Model.py"
    program.write_text(GOOD_RELU)
    command = [sys.executable, str(NO_LANDLOCK), "-m", "synth_modules.cli.validate", str(program), "--json"]
    env = {k: v for k, v in os.environ.items() if k != UNSAFE_ENV}
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert refused.returncode == 2 and UNSAFE_FLAG in refused.stderr, refused.stderr
    ran = subprocess.run(
        [*command, UNSAFE_FLAG, "--timeout-s", "120"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert "WARNING" in ran.stderr and UNSAFE_FLAG in ran.stderr, ran.stderr
    row = json.loads(ran.stdout.splitlines()[0])
    assert row["ok"], row


@pytest.mark.skipif(landlock.abi_version() < 6, reason="needs Landlock ABI >= 6 (signal scoping)")
def test_landlock_alone_blocks_writes_signals_and_environ(tmp_path, secret_env):
    """Landlock holds without a uid change: this child keeps the parent's uid, as a non-root pool's would.

    (Capabilities are dropped as the sandbox does, so a root test run looks like a non-root user's.)
    """
    allowed = tmp_path / "job"
    allowed.mkdir()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        results = []
        try:
            if os.geteuid() == 0:
                limits.drop_capabilities()
            landlock.restrict(limits.read_roots(), [str(allowed)])
            (allowed / "ok.txt").write_text("fine")
            results.append("write-inside")
            for attempt in (
                lambda: open(tmp_path / "outside.txt", "w"),  # noqa: SIM115
                lambda: open(f"/proc/{os.getppid()}/environ", "rb").read(),  # noqa: SIM115
                lambda: os.kill(os.getppid(), 0),
            ):
                try:
                    attempt()
                    results.append("escaped")
                except PermissionError:
                    results.append("denied")
        finally:
            os.write(write_fd, ",".join(results).encode())
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    outcome = os.read(read_fd, 1024).decode()
    os.close(read_fd)
    assert outcome == "write-inside,denied,denied,denied"
    assert not (tmp_path / "outside.txt").exists()
