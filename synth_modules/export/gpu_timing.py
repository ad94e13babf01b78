"""Timing for seed tasks, through the kernel evaluator's timing (kernel_search/evaluator/timing.py: warm-up, L2
flush, device-wide sync, CUDA events cross-checked by the host clock, interleaved rounds, median + IQR), plus the
two things only export-seeds needs: the eager forward captured as one CUDA graph, and the GPU's measured peaks
for the roofline.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kernel_search.evaluator.timing import Stats, TimingSettings, measure_interleaved


def time_calls(fns: dict[str, Callable[[], object]], device: str, budget_s: float = 1.0) -> dict[str, Stats]:
    """Every callable timed in interleaved rounds (drift hits all alike); repetitions sized to `budget_s`."""
    settings = TimingSettings(warmup=2, min_reps=10, max_reps=50, budget_s=budget_s)
    return measure_interleaved(fns, device, settings)


def cuda_graph(fn: Callable[[], object], device: str) -> Callable[[], object]:
    """`fn` captured once as a CUDA graph; the returned callable replays it (no launch or Python overhead)."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def measured_peaks(device: str, dtype: torch.dtype) -> tuple[float, float]:
    """(FLOP/s of a large matmul in `dtype`, bytes/s of a large copy) on `device`: the roofline's ceilings."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    src = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    stats = time_calls({"mm": lambda: a @ b, "copy": lambda: dst.copy_(src)}, device, budget_s=0.5)
    return 2 * n**3 / (stats["mm"].median_us * 1e-6), 2 * src.numel() / (stats["copy"].median_us * 1e-6)
