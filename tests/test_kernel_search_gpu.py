"""The evaluator on CUDA (marked `gpu`, skipped without one): Inductor's own code, CUDA faults, timing noise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kernel_search.evaluator import EvalOptions, Evaluator, load_task
from kernel_search.tasks.inductor_candidates import inductor_candidate

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
CORPUS = Path(__file__).resolve().parent / "kernel_search_corpus"
FAULT = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def wild_store(out_ptr):
    tl.store(out_ptr + (1 << 40), 1.0)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        out = torch.empty_like(x)
        wild_store[(1,)](out)
        return out
"""


def test_inductor_generated_code_scores_ok(tmp_path: Path) -> None:
    task = load_task(CORPUS / "task_linear_relu.py")
    source = inductor_candidate(task.path, "cuda")
    assert "class ModelNew" in source and "@triton.jit" in source
    result = Evaluator("cuda", EvalOptions(baselines=("compile",), cache_dir=str(tmp_path))).evaluate(
        task, source
    )
    assert (result.category, result.correct) == ("ok", True), result.message
    assert result.baselines["compile"] > 0 and result.speedup_vs_compile


def test_a_cuda_fault_costs_only_that_candidate(tmp_path: Path) -> None:
    evaluator = Evaluator("cuda", EvalOptions(baselines=(), cache_dir=str(tmp_path)))
    task = load_task(CORPUS / "task_add_mul.py")
    assert evaluator.evaluate(task, FAULT, "fault").category == "crash"
    honest = (CORPUS / "good_triton_add_mul.py").read_text()
    assert evaluator.evaluate(task, honest, "after").category == "ok"
