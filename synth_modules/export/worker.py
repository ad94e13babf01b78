"""The export-pairs GPU worker's handler, served by the self-confining sandbox service (sandbox/service.py).

The service confines the process (Landlock: writes only in its scratch directory; no privileges; allow-listed
environment) before any program; a GPU worker's CUDA context is created just before that, in `prepare`. `setup` warms
Inductor and Triton up once; `handle` turns one program into a verified pair in a fresh scratch directory.
The pool (gpu_workers.py) owns timeouts, crashes and restarts; `check` lists settings a program must not have
changed for the next one (the service also compares the functions the pair is judged with).
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from pathlib import Path
from typing import Any

INTEGRITY_MODULES = (
    "synth_modules.export.pairing",
    "synth_modules.export.capture",
    "synth_modules.export.verify",
    "synth_modules.export.programs",
)


def _environment(device: str) -> dict[str, Any]:
    import torch

    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:  # CPU-only installs (the pool's own tests) have no Triton
        triton_version = None
    on_gpu = torch.device(device).type == "cuda"
    return {
        "torch_version": torch.__version__,
        "triton_version": triton_version,
        "gpu_name": torch.cuda.get_device_name(torch.device(device)) if on_gpu else "cpu",
        "pid": os.getpid(),
    }


def _settings_state() -> dict[str, Any]:
    import torch

    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "threads": torch.get_num_threads(),
        "default_dtype": str(torch.get_default_dtype()),
        "grad_enabled": torch.is_grad_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


_BASELINE: dict[str, Any] = {}


def prepare(settings: dict[str, Any]) -> None:
    """Trusted, before confinement and before any program: create the CUDA context (a GPU worker only).

    The one order validated on the H200 host is the kernel evaluator's: CUDA initialised, then Landlock and
    the capability drop. Initialising CUDA after confinement failed there (error 304) under the full CPU
    recipe and is unverified under the GPU one (benchmarks/sandbox_gpu_preflight.py compares the orders).
    """
    import torch

    if torch.device(settings["device"]).type == "cuda":
        torch.cuda.init()
        torch.zeros(1, device=settings["device"]).add_(1)
        torch.cuda.synchronize()


def setup(settings: dict[str, Any]) -> dict[str, Any]:
    """Strict float32 (no TF32) for honest comparisons, and a tiny compile so the first program pays no warm-up."""
    import torch
    import torch._dynamo
    import torch._inductor.compile_fx

    import synth_modules.export.pairing  # noqa: F401 -- imported before `ready`, never inside a task's timeout

    device = settings["device"]
    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if settings.get("warmup", True):
        probe = torch.compile(lambda x: torch.relu(x) * 2.0 + x.sum())
        probe(torch.randn(64, device=device))
        torch._dynamo.reset()
    _BASELINE.update(_settings_state())
    return _environment(device)


def check() -> list[str]:
    """Global torch settings a program changed (they would bias the next program's verification)."""
    now = _settings_state()
    return [f"torch setting {k} changed to {now[k]!r}" for k in _BASELINE if now[k] != _BASELINE[k]]


def _release() -> None:
    """After every program: Dynamo's caches dropped and CUDA's cached blocks freed, so the next starts clean."""
    import torch

    torch._dynamo.reset()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def handle(task: dict[str, Any], settings: dict[str, Any], scratch: str) -> dict[str, Any]:
    """One program -> one pair (or a categorised rejection); `scratch` is this task's private directory."""
    import torch

    from synth_modules.export.errors import ExportError
    from synth_modules.export.pairing import CheckSettings, make_pair

    check_settings = CheckSettings.from_dict(settings.get("check", {}))
    started = time.perf_counter()
    reply: dict[str, Any] = {"id": task["id"]}
    try:
        program = Path(scratch) / f"{task['entry_point']}.py"  # the text the pool sent, never the run dir
        source = task.get("source")
        if source is None:  # a caller that named the program's folder in read_roots may send its path
            source = Path(task["path"]).read_text(encoding="utf-8")
        program.write_text(source, encoding="utf-8")
        if settings.get("mode") == "seed":
            return _run_seed(task, settings, program, scratch)
        result = make_pair(program, task["entry_point"], settings["device"], Path(scratch), check_settings)
        reply.update(ok=True, **dataclasses.asdict(result))
    except ExportError as error:
        reply.update(ok=False, category=str(error.category), message=error.message)
    except torch.cuda.OutOfMemoryError as error:
        reply.update(ok=False, category="memory_limit", message=str(error)[:2000])
    except Exception as error:  # a bug of ours or an odd program: report it; the pool restarts the worker
        reply.update(ok=False, category="crash", message=f"{type(error).__name__}: {error}"[:2000])
        traceback.print_exc()
    finally:
        _release()
    reply["seconds"] = time.perf_counter() - started
    return reply


def _run_seed(task: dict[str, Any], settings: dict[str, Any], program: Path, scratch: str) -> dict[str, Any]:
    """export-seeds --device: rescale, re-validate, filter and time one task (seed_measure.py)."""
    import torch

    from synth_modules.export.seed_measure import Drop, measure_seed

    started = time.perf_counter()
    reply: dict[str, Any] = {"id": task["id"]}
    try:
        record = measure_seed(program, task["entry_point"], settings, Path(scratch))
        reply.update(ok=True, **record)
    except Drop as drop:
        reply.update(drop.record, ok=False, category=drop.reason, message=drop.message[:2000])
        reply.pop("task_source", None)
    except torch.cuda.OutOfMemoryError as error:
        reply.update(ok=False, category="memory", message=str(error)[:2000])
    except Exception as error:  # the program's own failure at these sizes, or a bug of ours: report, go on
        reply.update(ok=False, category="invalid", message=f"{type(error).__name__}: {error}"[:2000])
        traceback.print_exc()
    finally:
        _release()
    reply["seconds"] = time.perf_counter() - started
    return reply
