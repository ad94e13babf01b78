"""The reward-hack corpus: every hack caught with its kind, every honest candidate accepted.

CPU runs in CI (Triton through TRITON_INTERPRET=1); the same cases run on CUDA when a GPU is present (`gpu`).
Each case runs with the default evaluator and, where the header says what the runtime checks alone make of it,
with the static source checks off.
"""

from __future__ import annotations

import pytest
import torch
from kernel_search_cases import Case, load_cases, outcome

from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings, load_task

CASES = load_cases()


def _params(device: str) -> list:
    params = []
    for case in CASES:
        if device in case.expect:
            params.append(pytest.param(case, True, id=f"{case.name}"))
        if device in case.unchecked and case.unchecked[device] != case.expect.get(device):
            params.append(pytest.param(case, False, id=f"{case.name}-unchecked"))
    return params


def _evaluate(case: Case, static: bool, device: str, cache_dir: str) -> str:
    env = {"TRITON_INTERPRET": "1"} if device == "cpu" else {}
    quick = TimingSettings(budget_s=0.3) if device == "cpu" else TimingSettings()  # 30 reps still the floor
    options = EvalOptions(
        baselines=(), static_checks=static, cache_dir=cache_dir, extra_env=env, timing=quick
    )
    result = Evaluator(device, options).evaluate(load_task(case.task_path), case.source, case.name)
    assert result.to_dict()["category"] == result.category  # the record is complete whatever the outcome
    return outcome(result.category, result.hack) + (f" ({result.message})" if result.message else "")


def test_corpus_covers_every_hack_of_the_issue() -> None:
    kinds = {c.expect.get("cpu", c.expect.get("cuda")) for c in CASES} | {
        c.unchecked.get("cuda", "") for c in CASES
    }
    hacks = {k.split(":", 1)[1] for k in kinds if k and k.startswith("reward_hack:")}
    assert {
        "stale_memory", "constant_output", "pointer_cache", "side_stream", "unsynced_stream", "output_aliasing",
        "input_mutation", "calls_reference", "precision_downcast", "patched_timing", "background_thread",
        "tensor_subclass", "early_exit", "try_except_fallback",
    } <= hacks  # fmt: skip
    assert {c.name for c in CASES if c.expect.get("cpu") == "ok" or c.expect.get("cuda") == "ok"} >= {
        "good_triton_add_mul",
        "good_inline_cuda_add_mul",
    }


@pytest.mark.parametrize(("case", "static"), _params("cpu"))
def test_corpus_on_cpu(case: Case, static: bool, tmp_path) -> None:
    wanted = (case.expect if static else case.unchecked)["cpu"]
    got = _evaluate(case, static, "cpu", str(tmp_path))
    assert got.split(" ", 1)[0] == wanted, got


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("case", "static"), _params("cuda"))
def test_corpus_on_cuda(case: Case, static: bool, tmp_path) -> None:
    wanted = (case.expect if static else case.unchecked)["cuda"]
    got = _evaluate(case, static, "cuda", str(tmp_path))
    assert got.split(" ", 1)[0] == wanted, got
