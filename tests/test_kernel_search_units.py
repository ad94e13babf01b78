"""Evaluator building blocks on CPU: comparison, poisoning, aliasing, weights, static checks, timing, tasks."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from kernel_search.evaluator import correctness as cx
from kernel_search.evaluator import hacks, timing
from kernel_search.evaluator.devicelock import DeviceLock
from kernel_search.evaluator.result import CATEGORIES, EvalResult
from kernel_search.tasks import TaskError, check_candidate_source, load_task, load_tasks

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "kernel_search_corpus"
TASK = (CORPUS / "task_linear_relu.py").read_text(encoding="utf-8")


# --- comparison -------------------------------------------------------------------------------------------
def test_fp32_tolerance_is_tight_and_scaled_to_magnitude() -> None:
    ref = torch.linspace(-1000, 1000, 101)
    assert cx.compare_tensor(ref, ref * (1 + 5e-5)).ok
    assert not cx.compare_tensor(ref, ref * (1 + 1e-3)).ok
    # an element near zero may be off by a share of the output's scale (Inductor reorders reductions)
    near_zero = ref.clone()
    near_zero[50] += 0.05
    assert cx.compare_tensor(ref, near_zero).ok
    near_zero[50] += 1.0
    assert not cx.compare_tensor(ref, near_zero).ok


def test_half_precision_tolerances_are_looser() -> None:
    ref = torch.randn(256, dtype=torch.float64)
    for dtype in (torch.float16, torch.bfloat16):
        exact, rounded = ref.to(dtype), (ref * (1 + 5e-3)).to(dtype)
        assert cx.compare_tensor(exact, rounded).ok, dtype
    assert not cx.compare_tensor(ref.float(), (ref * (1 + 5e-3)).float()).ok


def test_nan_only_where_the_reference_has_nan() -> None:
    ref = torch.tensor([1.0, float("nan"), 3.0])
    assert cx.compare_tensor(ref, ref.clone()).ok
    assert not cx.compare_tensor(ref, torch.tensor([float("nan"), float("nan"), 3.0])).ok
    assert not cx.compare_tensor(ref, torch.tensor([1.0, 2.0, 3.0])).ok


def test_shape_dtype_and_integer_outputs_must_match_exactly() -> None:
    assert not cx.compare_tensor(torch.zeros(3), torch.zeros(4)).ok
    assert not cx.compare_tensor(torch.zeros(3), torch.zeros(3, dtype=torch.float64)).ok
    assert not cx.compare_tensor(torch.arange(3), torch.arange(3) + 1).ok
    assert cx.compare_tensor(torch.arange(3), torch.arange(3)).ok


def test_flatten_outputs_accepts_tensors_and_tuples_only() -> None:
    assert cx.flatten_outputs(torch.ones(2))[0] == "tensor"
    assert len(cx.flatten_outputs((torch.ones(2), torch.ones(3)))[1]) == 2
    with pytest.raises(cx.OutputTypeError):
        cx.flatten_outputs([torch.ones(2), 3])
    with pytest.raises(cx.OutputTypeError):
        cx.flatten_outputs({"y": torch.ones(2)})


# --- memory -----------------------------------------------------------------------------------------------
def test_poison_is_nan_in_every_float_width_and_detected() -> None:
    block = cx._poisoned(64, "cpu")
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        assert bool(block.view(dtype).isnan().all()), dtype
        assert cx.poison_fraction(block.view(dtype)) == 1.0
    assert cx.poison_fraction(torch.full((8,), float("nan"))) == 0.0  # a computed NaN is not stale memory


def test_cpu_worker_environment_poisons_every_fresh_allocation(tmp_path) -> None:
    """CPU reuse of freed blocks depends on the heap's history (CI once handed the candidate an unpoisoned
    block), so the CPU worker runs with glibc's allocator perturbation: torch.empty is poison at any size."""
    import subprocess
    import sys

    from kernel_search.evaluator.isolation import IsolationSettings, worker_environment
    from synth_modules.sandbox.environment import sandbox_environment

    env = {**sandbox_environment(str(tmp_path)), **worker_environment(IsolationSettings(device="cpu"))}
    code = (
        "import torch, json\n"
        "from kernel_search.evaluator import correctness as cx\n"
        "torch.ones(1 << 16).sum(); junk = [torch.randn(n) for n in (24576, 24576, 1 << 20)]; del junk\n"
        "print(json.dumps([cx.poison_fraction(torch.empty(n)) for n in (7, 24576, 1 << 20, 1 << 23)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [1.0, 1.0, 1.0, 1.0]
    # computed values stay far below the 1% the pipeline calls stale (a random 16-bit word matches 2 in 65536)
    assert cx.poison_fraction(torch.randn(24576)) < cx.CHANCE_SHARE


def test_a_chance_poison_word_in_computed_output_stays_below_the_chance_share() -> None:
    """Random fp32 low halves hit a poison word about once in 65,536; that must not read as stale memory, nor
    switch the stale-memory check off when it happens in the reference's output."""
    computed = torch.randn(1 << 20, generator=torch.Generator().manual_seed(0))
    share = cx.poison_fraction(computed)
    assert 0.0 < share < cx.CHANCE_SHARE < cx.STALE_SHARE  # a chance hit exists here and is far below both
    empty = torch.empty(1 << 12)
    empty.view(torch.int16).fill_(cx.POISON_16)
    assert cx.poison_fraction(empty) > cx.STALE_SHARE


def test_aliasing_is_found_through_views() -> None:
    x = torch.randn(4, 4)
    assert cx.aliases([x[1:].t()], [x])
    assert not cx.aliases([x.clone()], [x])
    assert cx.exact_tensor_types([x, nn.Parameter(x)])
    assert not cx.exact_tensor_types([x.as_subclass(type("Sub", (torch.Tensor,), {}))])


def test_randomized_weights_differ_from_defaults_and_keep_sign() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.LayerNorm(8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cx.randomize_weights(model, seed=3)
    after = model.state_dict()
    for key, value in after.items():
        if value.is_floating_point():
            assert not torch.equal(before[key], value), key
    assert bool((after["1.running_var"] > 0).all()) and bool((after["2.weight"] > 0).all())
    torch.manual_seed(0)
    again = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.LayerNorm(8))
    cx.randomize_weights(again, seed=3)
    assert all(torch.equal(after[k], v) for k, v in again.state_dict().items())  # same seeds, same weights


def test_share_weights_by_keys_or_position_else_refuses() -> None:
    ref = nn.Linear(4, 3)
    cx.randomize_weights(ref, 0)
    same = nn.Linear(4, 3)
    assert cx.share_weights(ref, same) == "state_dict" and torch.equal(same.weight, ref.weight)

    class Renamed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3, 4))
            self.b = nn.Parameter(torch.zeros(3))

    renamed = Renamed()
    assert cx.share_weights(ref, renamed) == "positional" and torch.equal(renamed.w, ref.weight)
    with pytest.raises(ValueError, match="shape or dtype"):
        cx.share_weights(ref, nn.Linear(4, 5))
    with pytest.raises(ValueError, match="cannot be shared"):
        cx.share_weights(ref, nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 3)))


def test_input_sets_differ_in_seed_and_distribution() -> None:
    def get_inputs() -> list:
        return [torch.rand(1000), 7]

    sets = [cx.make_inputs(get_inputs, 10 + k, k, "cpu") for k in range(3)]
    assert all(s[1] == 7 for s in sets)
    assert all(bool((s[0] >= 0).all()) for s in sets)  # positive inputs stay positive
    means = [float(s[0].mean()) for s in sets]
    assert means[2] < 0.2 < means[0]  # the "shrunk" set really is another distribution


# --- static checks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("import time\ntime.perf_counter = lambda: 0\n", hacks.PATCHED_TIMING),
        ("import torch as t\nsetattr(t.cuda, 'synchronize', None)\n", hacks.PATCHED_TIMING),
        ("import threading\n", hacks.BACKGROUND_THREAD),
        ("s = '''std::thread t(work);'''\n", hacks.BACKGROUND_THREAD),
        ("import torch\ns = torch.cuda.Stream()\n", hacks.SIDE_STREAM),
        ("src = 'cudaStreamCreate(&s);'\n", hacks.SIDE_STREAM),
        ("try:\n    f()\nexcept Exception:\n    g()\n", hacks.TRY_EXCEPT_FALLBACK),
        ("x = Model(3)\n", hacks.CALLS_REFERENCE),
        ("import torch\nclass T(torch.Tensor):\n    pass\n", hacks.TENSOR_SUBCLASS),
        ("exec('x = 1')\n", hacks.DYNAMIC_CODE),
        ("import importlib\n", hacks.DYNAMIC_CODE),
    ],
)
def test_each_strict_check_fires(source: str, kind: str) -> None:
    strict, _ = hacks.scan_source(source)
    assert strict is not None and strict.kind == kind


def test_honest_sources_pass_the_static_checks() -> None:
    for name in ("good_triton_add_mul.py", "good_inline_cuda_add_mul.py", "hack_same_ops.py"):
        strict, _ = hacks.scan_source((CORPUS / name).read_text(encoding="utf-8"))
        assert strict is None, (name, strict)
    rows = [json.loads(line) for line in (ROOT / "tests/fixtures/pairs/pairs.jsonl").read_text().splitlines()]
    for row in rows:  # Inductor's own generated code, as export-pairs captured it on an H200
        strict, _ = hacks.scan_source(row["triton_code"])
        assert strict is None, (row["entry_point"], strict)
    strict, warnings = hacks.scan_source("y = x.half()\ntry:\n    f()\nexcept ValueError:\n    raise\n")
    assert strict is None and [w.kind for w in warnings] == [hacks.PRECISION_CAST]


def test_integrity_snapshot_sees_patches_and_threads() -> None:
    import threading

    snapshot = hacks.integrity_snapshot()  # the sandbox's mechanism (integrity), the evaluator's hack kinds
    assert hacks.runtime_finding(snapshot) is None
    original = time.perf_counter
    time.perf_counter = lambda: 0.0
    try:
        found = hacks.runtime_finding(snapshot)
        assert found is not None and found.kind == hacks.PATCHED_TIMING and "perf_counter" in found.message
    finally:
        time.perf_counter = original
    original_record = torch.cuda.Event.record
    torch.cuda.Event.record = lambda self, stream=None: None
    try:
        found = hacks.runtime_finding(snapshot)
        assert found is not None and found.kind == hacks.PATCHED_TIMING and "Event" in found.message
    finally:
        torch.cuda.Event.record = original_record
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        found = hacks.runtime_finding(snapshot)
        assert found is not None and found.kind == hacks.BACKGROUND_THREAD
    finally:
        stop.set()
        thread.join()
    assert hacks.runtime_finding(snapshot) is None
    assert hacks.leftover_finding([]) is None
    assert hacks.leftover_finding(["1 process(es) left running"]).kind == hacks.BACKGROUND_THREAD
    assert hacks.leftover_finding(["time: perf_counter changed"]).kind == hacks.PATCHED_TIMING


# --- timing -----------------------------------------------------------------------------------------------
def test_interleaved_timing_orders_two_workloads() -> None:
    small, big = torch.randn(64), torch.randn(400_000)
    settings = timing.TimingSettings(warmup=2, min_reps=30, max_reps=40, budget_s=0.2, flush_l2=False)
    stats = timing.measure_interleaved({"small": small.sum, "big": lambda: big.sort()}, "cpu", settings)
    assert stats["small"].reps == stats["big"].reps >= 30
    assert stats["small"].median_us < stats["big"].median_us
    assert stats["big"].clock == "host" and stats["big"].iqr_us >= 0


def test_host_clock_overrides_events_that_missed_work() -> None:
    agree = timing.summarize([100.0] * 30, [110.0] * 30)
    assert agree.clock == "cuda_events" and agree.median_us == 100.0
    missed = timing.summarize([10.0] * 30, [2000.0] * 30)  # work finished only at the device-wide sync
    assert missed.clock == "host_override" and missed.median_us == 2000.0


def test_device_lock_is_reentrant_across_modes(tmp_path: Path) -> None:
    lock = DeviceLock(str(tmp_path), "cuda:0")
    with lock.shared():
        pass
    with lock.exclusive():
        pass
    assert (tmp_path / "cuda_0.lock").exists()


# --- tasks and results ------------------------------------------------------------------------------------
def test_tasks_from_file_index_and_level_folders(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n in (2, 1):
        (seeds / f"{n}_Lin.py").write_text(TASK)
    (seeds / "index.json").write_text(
        json.dumps({"tasks": [{"file": "2_Lin.py", "id": "b"}, {"file": "1_Lin.py"}]})
    )
    assert [t.name for t in load_tasks(seeds)] == ["2_Lin", "1_Lin"]  # index order
    assert load_tasks(seeds)[0].meta["id"] == "b"
    kb = tmp_path / "KernelBench"
    for level, names in (("level1", ["10_B.py", "2_A.py"]), ("level2", ["1_C.py"])):
        (kb / level).mkdir(parents=True)
        for name in names:
            (kb / level / name).write_text(TASK)
    assert [t.name for t in load_tasks(kb)] == ["level1/2_A", "level1/10_B", "level2/1_C"]
    assert [t.name for t in load_tasks(kb / "level1")] == ["2_A", "10_B"]
    assert load_task(kb / "level2" / "1_C.py").sha == load_task(seeds / "1_Lin.py").sha


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("def get_inputs(): pass\ndef get_init_inputs(): pass\n", "no top-level class Model"),
        ("class Model: pass\ndef get_inputs(): pass\n", "get_init_inputs"),
        ("class Model(:\n", "not valid Python"),
    ],
)
def test_bad_tasks_are_one_clear_error(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "t.py"
    path.write_text(text)
    with pytest.raises(TaskError, match=error):
        load_task(path)
    with pytest.raises(TaskError, match="no such"):
        load_tasks(tmp_path / "missing")


def test_candidate_source_needs_model_new() -> None:
    assert check_candidate_source("class ModelNew: pass") is None
    assert "ModelNew" in (check_candidate_source("class Model: pass") or "")
    assert "not valid" in (check_candidate_source("def (") or "")


def test_result_record_round_trips_and_rejects_unknown_categories() -> None:
    result = EvalResult("t", "c", True, "ok", runtime_us=3.0, baselines={"eager": 6.0}, speedup_vs_eager=2.0)
    data = json.loads(result.to_json())
    for key in ("task", "candidate", "correct", "category", "hack", "message", "runtime_us", "iqr_us",
                "baselines", "speedup_vs_eager", "speedup_vs_compile"):  # fmt: skip
        assert key in data
    assert EvalResult.from_dict(data) == result and result.counts_as_win
    assert set(CATEGORIES) == {"ok", "compile_error", "runtime_error", "mismatch", "timeout", "crash",
                               "reward_hack", "fallback"}  # fmt: skip
    with pytest.raises(ValueError, match="unknown category"):
        EvalResult("t", "c", category="great")
    assert not EvalResult("t", "c", True, "fallback", runtime_us=1.0).counts_as_win
    assert math.isclose(data["speedup_vs_eager"], 2.0)


# --- profiling --------------------------------------------------------------------------------------------
def test_fallback_is_the_reference_ops_and_nothing_else() -> None:
    from kernel_search.evaluator import profiling

    x, w = torch.randn(16, 16), torch.randn(16, 16)
    reference = profiling.profile_kernels(lambda: torch.relu(x @ w), "cpu")
    same = profiling.profile_kernels(lambda: torch.nn.functional.relu(torch.mm(x, w)), "cpu")
    own = profiling.profile_kernels(lambda: torch.addmm(x, x, w).sigmoid(), "cpu")
    assert "aten::relu" in reference.names or "aten::clamp_min" in reference.names
    assert profiling.fallback_reason(same, reference, "cpu") is not None
    assert profiling.fallback_reason(own, reference, "cpu") is None
    invisible = profiling.KernelProfile(names=set())  # an inline C++ extension: nothing the profiler sees
    assert profiling.fallback_reason(invisible, reference, "cpu") is None
    assert profiling.fallback_reason(invisible, reference, "cuda") is not None  # on CUDA: no kernels at all


def test_compile_speedup_is_formed_from_interleaved_ratios() -> None:
    from kernel_search.evaluator.baselines import speedup_vs_compiled

    # Baseline worker: compile 2x faster than eager. Candidate worker ran on a machine half as fast (every time
    # doubled) and was 4x faster than eager there: it is 2x faster than compile, whatever the drift.
    cached = {"eager": 100.0, "compile": 50.0}
    speedup, method = speedup_vs_compiled(50.0, 4.0, cached, "compile")
    assert speedup == pytest.approx(2.0)
    assert "interleaved" in method
    # The naive quotient would have called it a tie.
    assert cached["compile"] / 50.0 == pytest.approx(1.0)
    # Without an interleaved eager time the quotient is all there is, and it says so.
    speedup, method = speedup_vs_compiled(25.0, None, cached, "compile")
    assert speedup == pytest.approx(2.0) and "cached" in method
    assert speedup_vs_compiled(25.0, 4.0, {"eager": 100.0}, "compile") == (None, "")
