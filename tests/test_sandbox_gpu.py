"""The sandbox with device="cuda": each forked child initialises CUDA itself (a context does not survive fork)."""

from __future__ import annotations

import pytest
import torch
from sandbox_corpus import load_corpus, outcome

from synth_modules.sandbox import SandboxOptions, SandboxPool

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    # Measured on the H200 box (torch 2.11): the forked child still finds CUDA "poisoned" by its worker
    # ("Cannot re-initialize CUDA in forked subprocess"), so every program is an init_error. Strict, so this
    # starts failing the day it is fixed and the marker must go.
    pytest.mark.xfail(strict=True, reason="device='cuda' in forked warm workers: CUDA poisoned across fork"),
]


def test_cuda_validation_and_containment():
    corpus = {item.name: item for item in load_corpus()}
    names = ["good_conv_gelu", "good_linear_softmax", "nan_output", "nondeterministic", "infinite_loop"]
    with SandboxPool(num_workers=1, options=SandboxOptions(device="cuda", timeout_s=300)) as pool:
        verdicts = {name: pool.submit(corpus[name].job()).result() for name in names}
    for name in names:
        verdict = verdicts[name]
        assert outcome(verdict) == corpus[name].expect, f"{name}: {verdict.message}"
    assert verdicts["good_conv_gelu"].checks["graph_count"] >= 1
