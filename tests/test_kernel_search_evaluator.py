"""The evaluator end to end on CPU: isolation, categories, Inductor's own code accepted, the CLI and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from kernel_search.evaluator import EvalOptions, EvalResult, Evaluator, TimingSettings, load_task
from kernel_search.evaluator.isolation import IsolationSettings, run_isolated
from kernel_search.report import render_summary, summarize
from kernel_search.report.summary import fast_p
from synth_modules.export.seeds import flat_init_inputs, seed_source
from synth_modules.export.verify import retarget_to_cpu
from synth_modules.program import rename_class, split_init_inputs
from synth_modules.sandbox import landlock
from synth_modules.sandbox.loading import import_file

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "kernel_search_corpus"
LINEAR_TASK = CORPUS / "task_linear_relu.py"
FIXTURE = ROOT / "tests" / "fixtures" / "kernel_search"
HEAD = "import torch\nimport torch.nn as nn\n\n\nclass ModelNew(nn.Module):\n    def __init__(self, n_in, n_out):\n"
HEAD += (
    "        super().__init__()\n        self.linear = nn.Linear(n_in, n_out)\n\n    def forward(self, x):\n"
)


def _evaluate(tmp_path: Path, body: str, **options) -> EvalResult:
    opts = EvalOptions(
        baselines=(), cache_dir=str(tmp_path / "cache"), timing=TimingSettings(budget_s=0.3), **options
    )
    return Evaluator("cpu", opts).evaluate(load_task(LINEAR_TASK), HEAD + body, "probe")


@pytest.mark.parametrize(
    ("body", "category", "text"),
    [
        ("        return torch.relu(self.linear(x)) * 2.0 + 1e-3\n", "mismatch", "elements off"),
        ("        raise ValueError('no kernel yet')\n", "runtime_error", "no kernel yet"),
        ("        return [1, 2]\n", "mismatch", "int"),
        ("        return undefined_name(x)\n", "runtime_error", "NameError"),
    ],
)
def test_candidate_faults_are_categorized(tmp_path: Path, body: str, category: str, text: str) -> None:
    result = _evaluate(tmp_path, body)
    assert (result.category, result.correct) == (category, False)
    assert text in result.message


def test_compile_errors_never_start_a_worker(tmp_path: Path) -> None:
    evaluator = Evaluator("cpu", EvalOptions(baselines=(), cache_dir=str(tmp_path)))
    task = load_task(LINEAR_TASK)
    assert evaluator.evaluate(task, "class ModelNew(:\n", "bad").category == "compile_error"
    assert evaluator.evaluate(task, "import torch\n", "none").category == "compile_error"
    imported = evaluator.evaluate(task, "import no_such_module\nclass ModelNew: pass\n", "imp")
    assert imported.category == "compile_error" and "no_such_module" in imported.message
    assert imported.phase == "load"


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    body = "        os.system('sleep 4242 &')\n        while True:\n            pass\n"
    source = "import os\n" + HEAD + body
    opts = EvalOptions(baselines=(), timeout_s=20, static_checks=False, cache_dir=str(tmp_path))
    result = Evaluator("cpu", opts).evaluate(load_task(LINEAR_TASK), source, "spin")
    assert result.category == "timeout" and "correctness" in result.message
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline == b"sleep\x004242\x00":
            leftovers.append(pid)
    assert not leftovers


def test_a_dying_worker_is_a_crash(tmp_path: Path) -> None:
    result = _evaluate(tmp_path, "        import os\n        os.abort()\n")
    assert result.category == "crash" and "SIGABRT" in result.message


def test_secrets_are_not_visible_to_the_candidate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KS_TEST_API_KEY", "hunter2")
    result = _evaluate(
        tmp_path,
        "        import os\n        raise RuntimeError(os.environ.get('KS_TEST_API_KEY', 'absent'))\n",
    )
    assert (
        result.category == "runtime_error" and "absent" in result.message and "hunter2" not in result.message
    )


@pytest.mark.skipif(landlock.abi_version() == 0, reason="kernel without Landlock")
def test_candidate_cannot_write_outside_its_private_dir(tmp_path: Path) -> None:
    marker = tmp_path / "escaped.txt"
    result = _evaluate(tmp_path, f"        open({str(marker)!r}, 'w').write('x')\n        return x\n")
    assert result.category == "runtime_error" and "Permission" in result.message
    assert not marker.exists()


def test_isolated_run_reports_silent_deaths(tmp_path: Path) -> None:
    run = run_isolated("json.tool", {"x": 1}, IsolationSettings(timeout_s=30))  # a module that sends nothing
    assert run.last("result") is None and not run.timed_out


def test_candidate_processes_are_ended_and_reported(tmp_path: Path) -> None:
    """A process started in a new session (out of reach of a process-group kill) is still ended by the sandbox
    service, and a candidate that leaves one behind is a reward hack even with a correct output."""
    body = (
        "        if not getattr(ModelNew, 'started', False):\n"
        "            ModelNew.started = True\n"
        "            subprocess.Popen(['sleep', '4343'], start_new_session=True)\n"
        "        return torch.relu(self.linear(x)) * 2.0\n"
    )
    result = _evaluate(
        tmp_path, body.replace("subprocess.", "__import__('subprocess')."), static_checks=False
    )
    assert (result.category, result.hack) == ("reward_hack", "background_thread"), result.message
    assert "left running" in result.message
    sleepers = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "4343"]]
    assert not sleepers


def test_evaluator_workers_are_the_sandbox_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator's worker is a handler of synth_modules.sandbox.service: confined (Landlock, rlimits),
    allow-listed environment, fresh scratch directory, and no process of it left once the run is back."""
    (tmp_path / "ks_probe.py").write_text(
        "import os, sys\n"
        "def setup(settings):\n    return {'pid': os.getpid()}\n"
        "def handle(request, settings, scratch):\n"
        "    return {'argv0': sys.argv[0], 'secret': os.environ.get('KS_PROBE_TOKEN'), 'cwd': os.getcwd(),\n"
        "            'scratch': scratch, 'perturb': os.environ.get('MALLOC_PERTURB_')}\n"
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("KS_PROBE_TOKEN", "hunter2")
    run = run_isolated("ks_probe", {}, IsolationSettings(timeout_s=60))
    reply, setup = run.last("result"), run.messages[0]
    assert reply["argv0"].endswith(os.path.join("synth_modules", "sandbox", "service.py"))
    assert reply["secret"] is None and reply["cwd"] == reply["scratch"] and reply["perturb"]
    assert setup["isolation"]["landlock"] == landlock.abi_version() and "user" in setup["isolation"]
    assert not psutil.pid_exists(setup["env"]["pid"]) and not os.path.exists(reply["scratch"])


def _inductor_case(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A KernelBench task and Inductor's code for it as ModelNew, from export-pairs' H200 fixture."""
    rows = [json.loads(line) for line in (ROOT / "tests/fixtures/pairs/pairs.jsonl").read_text().splitlines()]
    row = next(r for r in rows if name in r["entry_point"])
    entry = row["entry_point"]
    program = tmp_path / f"{entry}.py"
    program.write_text(row["python_code"])
    args, kwargs = split_init_inputs(import_file(program).get_init_inputs())
    flat = flat_init_inputs(getattr(import_file(program), entry), args, kwargs)
    task = tmp_path / "task.py"
    task.write_text(seed_source(row["python_code"], entry, flat))
    return task, rename_class(retarget_to_cpu(row["triton_code"]), f"{entry}New", "ModelNew")


@pytest.mark.parametrize("name", ["BatchNorm2d_ReLU", "Bmm_Add_Sigmoid"])
def test_inductor_generated_code_is_accepted(tmp_path: Path, name: str) -> None:
    task, candidate = _inductor_case(tmp_path, name)
    opts = EvalOptions(baselines=(), cache_dir=str(tmp_path / "cache"), extra_env={"TRITON_INTERPRET": "1"})
    result = Evaluator("cpu", opts).evaluate(load_task(task), candidate, name)
    assert (result.category, result.correct) == ("ok", True), result.message
    assert result.runtime_us and result.baselines["eager"] and result.speedup_vs_eager
    assert result.timing["candidate"]["reps"] >= 30 and result.correctness["sets"] >= 3


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kernel_search", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300, check=False)  # fmt: skip


def test_cli_eval_prints_one_json_object(tmp_path: Path) -> None:
    proc = _cli("eval", str(LINEAR_TASK), str(CORPUS / "hack_zeros.py"), "--device", "cpu", "--json",
                "--baselines", "none", "--cache-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["category"], data["hack"], data["correct"]) == ("reward_hack", "constant_output", False)
    assert {"task", "candidate", "runtime_us", "iqr_us", "baselines", "speedup_vs_compile"} <= set(data)


def test_cli_refuses_bad_arguments_before_any_work(tmp_path: Path) -> None:
    proc = _cli("eval", str(tmp_path / "missing.py"), str(CORPUS / "hack_zeros.py"), "--device", "cpu")
    assert proc.returncode == 2 and "no such task file" in proc.stderr
    proc = _cli(
        "eval-all", str(CORPUS / "task_add_mul.py"), str(tmp_path / "nope"), "--out", str(tmp_path / "R")
    )
    assert (
        proc.returncode == 2 and "no such candidates folder" in proc.stderr and not (tmp_path / "R").exists()
    )


def test_cli_eval_all_writes_results_and_summary(tmp_path: Path) -> None:
    tasks, cands = tmp_path / "tasks", tmp_path / "cands"
    tasks.mkdir()
    cands.mkdir()
    (tasks / "1_lin.py").write_text(LINEAR_TASK.read_text())
    (tasks / "2_lin.py").write_text(LINEAR_TASK.read_text())
    (cands / "1_lin.py").write_text((CORPUS / "hack_pointer_cache.py").read_text())
    proc = _cli("eval-all", str(tasks), str(cands), "--out", str(tmp_path / "R"), "--device", "cpu",
                "--baselines", "none", "--cache-dir", str(tmp_path / "cache"), "--jobs", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "R" / "results.jsonl").read_text().splitlines()]
    assert [(r["task"], r["category"], r["hack"]) for r in rows] == [
        ("1_lin", "reward_hack", "pointer_cache"),
        ("2_lin", "compile_error", None),
    ]
    summary = (tmp_path / "R" / "summary.md").read_text()
    assert "fast_1.2" in summary and "pointer_cache" in summary


def test_fast_p_counts_only_accepted_wins_over_all_tasks() -> None:
    def row(category: str, runtime: float | None, eager: float = 100.0) -> EvalResult:
        return EvalResult("t", "c", category in ("ok", "fallback"), category, runtime_us=runtime,
                          baselines={"eager": eager} if runtime else {})  # fmt: skip

    results = [row("ok", 50.0), row("ok", 90.0), row("fallback", 10.0), row("mismatch", None)]
    assert fast_p(results, "eager", 1.0) == 0.5  # the fallback's 10x is never a win
    assert fast_p(results, "eager", 1.5) == 0.25
    assert fast_p(results, "eager", 2.0) == 0.0  # strictly faster than p
    assert abs(summarize(results)["geomean_speedup"]["eager"] - (2.0 * 100 / 90) ** 0.5) < 1e-9


def test_committed_gpu_results_render() -> None:
    """The H200 eval-all rows (tests/fixtures/kernel_search) load back and summarise."""
    rows = [
        EvalResult.from_dict(json.loads(line))
        for line in (FIXTURE / "results.jsonl").read_text().splitlines()
    ]
    evaluated = [r for r in rows if r.runtime_us]
    assert len(evaluated) >= 10 and all(r.gpu == "NVIDIA H200" and r.device == "cuda" for r in evaluated)
    assert all(r.category == "ok" and r.timing["candidate"]["clock"] == "cuda_events" for r in evaluated)
    text = render_summary(evaluated)
    assert "| compile |" in text and "| eager |" in text
    corpus = json.loads((FIXTURE / "corpus_cuda.json").read_text())
    assert {r["case"] for r in corpus if r["pass"]} >= {"good_triton_add_mul", "good_inline_cuda_add_mul"}


@pytest.mark.slow
def test_compiled_baselines_are_measured_once_per_task(tmp_path: Path) -> None:
    opts = EvalOptions(baselines=("compile",), cache_dir=str(tmp_path), timing=TimingSettings(budget_s=0.3))
    evaluator = Evaluator("cpu", opts)
    source = (CORPUS / "hack_same_ops.py").read_text()
    first = evaluator.evaluate(load_task(LINEAR_TASK), source, "a")
    assert first.baselines["compile"] > 0 and first.speedup_vs_compile
    cache = json.loads((tmp_path / "baselines.json").read_text())
    (entry,) = cache.values()
    again = Evaluator("cpu", opts).evaluate(
        load_task(LINEAR_TASK), source, "b"
    )  # a new evaluator, same cache
    assert again.baselines["compile"] == first.baselines["compile"]
    assert json.loads((tmp_path / "baselines.json").read_text()) == cache and entry["baselines"]["compile"]
