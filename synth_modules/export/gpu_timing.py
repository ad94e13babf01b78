"""GPU timing for seed tasks: CUDA events around each call, L2 flushed before each, median and IQR.

One small module on purpose: kernel_search's evaluator (branch kernel-evaluator) owns the full timing harness;
until it lands in main, export-seeds times with this. On CPU (tests, CI) it falls back to perf_counter.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

_L2_FLUSH_BYTES = 256 << 20  # larger than any current GPU's L2 (H100/H200: 50 MB)


@dataclass
class Timing:
    median_us: float
    iqr_us: float
    reps: int


def _summary(samples: list[float]) -> Timing:
    samples = sorted(samples)
    q = statistics.quantiles(samples, n=4) if len(samples) >= 4 else [samples[0], samples[0], samples[-1]]
    return Timing(round(statistics.median(samples), 2), round(q[2] - q[0], 2), len(samples))


def time_call(
    fn: Callable[[], object], device: str, reps: int = 30, warmup: int = 3, budget_s: float = 3.0
) -> Timing:
    """Median time of `fn()` in microseconds; repetitions shrink so the whole measurement fits `budget_s`."""
    on_gpu = torch.device(device).type == "cuda"
    flush = torch.empty(_L2_FLUSH_BYTES, dtype=torch.uint8, device=device) if on_gpu else None
    for _ in range(warmup):
        fn()
    if on_gpu:
        torch.cuda.synchronize(device)
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(reps):
        if on_gpu:
            flush.zero_()  # type: ignore[union-attr]
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)  # all streams of the device: a side-stream kernel is counted too
            samples.append(start.elapsed_time(end) * 1e3)
        else:
            begin = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - begin) * 1e6)
        if len(samples) >= 5 and time.perf_counter() > deadline:
            break
    return _summary(samples)


def time_interleaved(
    first: Callable[[], object],
    second: Callable[[], object],
    device: str,
    reps: int = 20,
    budget_s: float = 2.0,
) -> tuple[Timing, Timing]:
    """Medians of `first` and `second` called alternately (L2 flushed before each), so drift hits both alike."""
    flush = torch.empty(_L2_FLUSH_BYTES, dtype=torch.uint8, device=device)
    for _ in range(2):
        first()
        second()
    torch.cuda.synchronize(device)
    samples: tuple[list[float], list[float]] = ([], [])
    deadline = time.perf_counter() + budget_s
    for _ in range(reps):
        for fn, out in ((first, samples[0]), (second, samples[1])):
            flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            out.append(start.elapsed_time(end) * 1e3)
        if len(samples[0]) >= 5 and time.perf_counter() > deadline:
            break
    return _summary(samples[0]), _summary(samples[1])


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
    mm = time_call(lambda: a @ b, device, reps=10, warmup=2)
    src = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    copy = time_call(lambda: dst.copy_(src), device, reps=10, warmup=2)
    return 2 * n**3 / (mm.median_us * 1e-6), 2 * src.numel() / (copy.median_us * 1e-6)
