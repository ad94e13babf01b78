"""Warm a worker once so every forked child starts with torch, Dynamo and Inductor already initialised.

What a child inherits from its warm parent is what it does not pay for: lazy imports (Dynamo, AOTAutograd,
Inductor lowerings and codegen, sympy), the C++ compiler probe and the precompiled Inductor header, autograd
and the FLOP counter. The warm-up model touches the common op families (conv, norm, pooling, linear, softmax,
reductions, activations) so their compile-time passes are loaded here rather than in every child.
"""

from __future__ import annotations

import contextlib
import importlib
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class _WarmupModel(nn.Module):
    """Small on purpose: each fused kernel is a g++ run, and the warm-up runs on every worker start."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.linear = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.gelu(self.norm(self.conv(x)))
        y = torch.nn.functional.adaptive_avg_pool2d(y, 2).flatten(1)
        y = self.linear(y)
        return torch.logsumexp(y, dim=1) + y.softmax(-1).amax(dim=1)


def warm_up(
    compile_backend: str = "inductor", extra_modules: tuple[str, ...] = (), gpu: bool = False
) -> dict[str, float]:
    """Run eager, backward, FLOP counting and one torch.compile (on CPU); import `extra_modules`.

    With `gpu` only the imports happen: Dynamo (and Inductor's Triton codegen) query CUDA, which poisons every
    later fork, so each child initialises CUDA, and compiles, on its own.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    for name in extra_modules:
        # An extra this machine lacks is not the worker's problem: the child that imports it reports it.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    if gpu:  # no tensor work at all: even seeding the RNG may touch CUDA state that a fork cannot carry
        timings["imports"] = round(time.perf_counter() - start, 3)
        return timings
    torch.manual_seed(0)
    model = _WarmupModel().eval()
    x = torch.randn(2, 3, 8, 8)
    out = model(x)
    out.sum().backward()
    with torch.no_grad(), FlopCounterMode(display=False):
        model(x)
    timings["eager"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    with torch.no_grad():
        torch.compile(model, backend=compile_backend)(x)
    timings["compile"] = round(time.perf_counter() - start, 3)
    torch._dynamo.reset()
    return timings
