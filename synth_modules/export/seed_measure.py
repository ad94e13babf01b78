"""One seed task measured on its device, inside an export worker (an isolated process; see gpu_workers.py).

Steps, each a reason to drop the task: rescale the program to the size profile (synth_modules.scaling) and
write it as a KernelBench task; build it on the device (memory over budget: `memory`); re-validate at the new
sizes (eager twice, compiled vs reference with the dtype-aware rule of sandbox/compare.py: `invalid`);
robust-kbench-style degeneracy filters (non-finite, constant, no variation along an axis, insensitive to the
input or to the weights: `degenerate`); then time eager, torch.compile (default mode) and the eager forward
replayed as one CUDA graph (`launch_bound` when the graph is >= 1.1x faster than eager); FLOPs and bytes from
the cost estimate give a roofline time, and headroom = measured time / roofline time.
"""

from __future__ import annotations

import copy
import fcntl
import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from synth_modules.export.gpu_timing import cuda_graph, measured_peaks, time_calls
from synth_modules.export.programs import init_inputs
from synth_modules.program import declared_dtype
from synth_modules.sandbox import degenerate
from synth_modules.sandbox.compare import compare, flatten_outputs, identical
from synth_modules.sandbox.loading import import_file
from synth_modules.scaling import get_profile, scale_source
from synth_modules.scaling.estimate import Estimate, estimate_module, estimate_source

LAUNCH_BOUND_RATIO = 1.1
LOW_PRECISION = (torch.bfloat16, torch.float16)


class Drop(Exception):
    """A task left out of the seeds: `reason` is the filter, `record` what was measured before it."""

    def __init__(self, reason: str, message: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.record = record or {}


@functools.cache
def _peaks(device: str, dtype: str) -> tuple[float, float]:
    return measured_peaks(device, getattr(torch, dtype))


@contextmanager
def _timing_lock(path: str | None):
    """Only one worker times at a time (others keep compiling on the CPU), so timings do not overlap."""
    if not path:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(module: Any, device: str, seed: int) -> torch.nn.Module:
    """The task's model, its weights drawn on `device` itself (GB-sized layers initialise in milliseconds)."""
    args, kwargs = init_inputs(module)
    torch.manual_seed(seed)
    with torch.device(device):
        return module.Model(*args, **kwargs).to(device).eval()


def _inputs(module: Any, device: str, seed: int) -> list[Any]:
    torch.manual_seed(seed)
    with torch.device(device):
        return [t.to(device) if isinstance(t, torch.Tensor) else t for t in module.get_inputs()]


def _forward(model: Any, inputs: list[Any]) -> list[torch.Tensor]:
    with torch.no_grad():
        return flatten_outputs(model(*inputs))


def _reference(model: torch.nn.Module, inputs: list[Any], like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Float32 reference for low-precision outputs (cast back to their dtype), else the outputs themselves."""
    if not any(o.dtype in LOW_PRECISION for o in like):
        return like
    wide = copy.deepcopy(model).float()
    out = _forward(
        wide, [t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in inputs]
    )
    return [r.to(c.dtype) if r.is_floating_point() else r for r, c in zip(out, like, strict=False)]


def _validate(module: Any, model: torch.nn.Module, inputs: list[Any], device: str) -> list[torch.Tensor]:
    first = _forward(model, inputs)
    if not identical(first, _forward(model, inputs)):
        raise Drop("invalid", "two eager runs differ")
    for check in (degenerate.empty_or_nonfinite, degenerate.constant_or_zero, degenerate.axis_invariant):
        problem = check(first)
        if problem:
            raise Drop("degenerate", problem)
    problem = degenerate.input_independent(first, _forward(model, _inputs(module, device, 2)))
    if problem:
        raise Drop("degenerate", problem)
    if any(True for _ in model.parameters()) and identical(
        first, _forward(_build(module, device, 2), inputs)
    ):
        raise Drop("degenerate", "output does not depend on the weights (another init gives the same output)")
    return first


def measure_seed(path: Path, entry_point: str, settings: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The task file text (at the profile's sizes) and its measurements; raises Drop with the reason."""
    from synth_modules.export.seeds import SeedError, seed_text

    device = settings["device"]
    profile = get_profile(settings.get("profile", "gpu"))
    source = path.read_text(encoding="utf-8")
    dtype = declared_dtype(source)
    scaled, scale_error = None, ""
    # meta first (no memory, milliseconds); a program meta cannot run (a missing meta kernel, a data-dependent
    # shape) is estimated on the device itself, where the memory budget still bounds each step
    for where in ("meta", device) if device != "meta" else ("meta",):
        try:
            scaled = scale_source(
                source,
                profile,
                lambda text, where=where: estimate_source(text, entry_point, where),
                dtype,
                settings.get("scale_budget_s", 20.0),
            )
            if where == "meta" and device != "meta" and scaled.values:
                estimate_source(scaled.source, entry_point, device)  # meta skips some checks (conv channels)
            break
        except Exception as error:  # the program does not run there (at its own sizes, or as rescaled)
            scaled = None
            scale_error += f"{where}: {type(error).__name__}: {error}"[:300] + "; "
    text = scaled.source if scaled else source
    scaled_path = workdir / path.name
    scaled_path.write_text(text, encoding="utf-8")
    try:
        task_text = seed_text(scaled_path, entry_point, text)
    except SeedError as error:
        raise Drop("unsupported", str(error)) from None
    task_path = workdir / f"task_{path.name}"
    task_path.write_text(task_text, encoding="utf-8")
    module = import_file(task_path, prefix="synth_seed_task")
    record: dict[str, Any] = {"task_source": task_text, "dtype": dtype, "profile": profile.name}
    record["scaling"] = {**scaled.to_dict(), "notes": scale_error} if scaled else {"error": scale_error}
    estimate: Estimate | None = scaled.estimate if scaled else None
    if estimate is None:
        try:
            estimate = estimate_module(module, "Model", device)
        except Exception:
            estimate = None
    budget = profile.device_memory_bytes or (1 << 62)
    on_gpu = torch.device(device).type == "cuda"
    lock = settings.get("timing_lock")
    try:
        with _timing_lock(lock):  # the GPU work of checking: never while another worker times
            if on_gpu:
                torch.cuda.reset_peak_memory_stats(device)
            model = _build(module, device, 1)
            inputs = _inputs(module, device, 1)
            outputs = _validate(module, model, inputs, device)
            peak = torch.cuda.max_memory_allocated(device) if on_gpu else 0
            record["peak_memory_bytes"] = peak
            if peak > budget:
                message = f"peak {peak / 2**30:.1f} GiB over the {budget / 2**30:.0f} GiB budget"
                raise Drop("memory", message, record)
        compiled = torch.compile(model)
        got = _forward(compiled, inputs)  # compiles (CPU) outside the lock; one forward runs on the GPU
        with _timing_lock(lock):
            result = compare(_reference(model, inputs, outputs), got)
        if not result.ok:
            raise Drop("invalid", f"compiled vs reference: {result.reason}")
    except torch.cuda.OutOfMemoryError as error:
        raise Drop("memory", str(error)[:300]) from None
    record["input_shapes"] = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    record["output_shapes"] = [list(o.shape) for o in outputs]
    with _timing_lock(lock), torch.no_grad():
        _time(record, model, compiled, inputs, device, float(settings.get("timing_budget_s", 1.0)))
        if estimate is not None:
            _roofline(record, estimate, device, dtype)
    if record.get("graph_speedup", 0.0) >= LAUNCH_BOUND_RATIO:
        ratio = record["graph_speedup"]
        raise Drop("launch_bound", f"one CUDA graph is {ratio:.2f}x faster than eager", record)
    return record


def _time(
    record: dict[str, Any], model: Any, compiled: Any, inputs: list[Any], device: str, budget_s: float
) -> None:
    """Eager, compiled and (on a GPU) CUDA-graph medians and IQRs, timed in interleaved rounds, into `record`."""
    fns = {"eager": lambda: model(*inputs), "compiled": lambda: compiled(*inputs)}
    capture_error = None
    if torch.device(device).type == "cuda":
        try:
            fns["cuda_graph"] = cuda_graph(lambda: model(*inputs), device)
        except (
            Exception
        ) as error:  # an op that cannot be captured (a host sync, a CPU tensor): cannot be judged
            capture_error = f"{type(error).__name__}: {error}"[:300]
    stats = time_calls(fns, device, budget_s=budget_s * len(fns))
    record["eager_us"], record["eager_iqr_us"] = stats["eager"].median_us, stats["eager"].iqr_us
    record["compiled_us"], record["compiled_iqr_us"] = stats["compiled"].median_us, stats["compiled"].iqr_us
    record["cuda_graph_us"] = stats["cuda_graph"].median_us if "cuda_graph" in stats else None
    if capture_error:
        raise Drop("graph_capture", capture_error, record)
    if record["cuda_graph_us"]:
        record["graph_speedup"] = round(record["eager_us"] / max(record["cuda_graph_us"], 1e-9), 3)


def _roofline(record: dict[str, Any], estimate: Estimate, device: str, dtype: str) -> None:
    """FLOPs and bytes; on a GPU the roofline time from its measured peaks and the headroom over it."""
    record["flops"], record["bytes"] = estimate.flops, estimate.min_bytes
    record["bytes_unfused"] = estimate.bytes_moved
    if torch.device(device).type != "cuda":
        return
    peak_flops, peak_bw = _peaks(device, dtype)
    roofline = max(estimate.flops / peak_flops, estimate.min_bytes / peak_bw) * 1e6
    record["peak_flops"], record["peak_bytes_per_s"] = peak_flops, peak_bw
    record["roofline_us"] = roofline
    if roofline > 0:
        record["headroom_eager"] = record["eager_us"] / roofline
        record["headroom_compiled"] = record["compiled_us"] / roofline
