"""The `helion` space: says whether Helion can run here, and why not when it cannot.

Helion's configs (block sizes, warps, stages, indexing, ...) belong to a kernel written with `@helion.kernel`;
a KernelBench task is a PyTorch module, so tuning one needs a Helion kernel for it first. What this space
does today is check the host: the Helion release installed must import against this torch and Triton, and
its autotuner must find a working config for the smallest kernel (benchmarks/helion_probe.py measures both on
the GPU host; docs/kernel_search.md records what it found). It raises `SpaceUnavailable` with that reason, so
`kernel-search tune --space helion` reports it per task instead of failing obscurely.
"""

from __future__ import annotations

from typing import Any

from kernel_search.spaces.base import SpaceUnavailable, TaskSpace
from kernel_search.tuning.search_space import Config

# What benchmarks/helion_probe.py found on the GPU host (H200, torch 2.11.0+cu130, Triton 3.6.0, 2026-12-02);
# docs/kernel_search.md "Helion status" has the records.
HOST_FINDING = (
    "helion 1.5.1 does not import on torch 2.11 (it needs torch._inductor.runtime.triton_compat.IntelGPUError, "
    "which torch 2.11 lacks); helion 1.4.0 imports, its autotuner was not yet probed with a valid kernel "
    "(see docs/kernel_search.md, 'Helion status')"
)


def helion_status() -> tuple[bool, str]:
    """(importable, description) for the helion installed in this environment."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False, "torch is not installed"
    try:
        import helion
    except ImportError as error:
        if getattr(error, "name", "") == "helion":
            return False, "helion is not installed (pip install helion)"
        return False, f"helion does not import on torch {torch.__version__}: {type(error).__name__}: {error}"
    except Exception as error:  # a release built for another torch fails in many ways at import time
        return False, f"helion does not import on torch {torch.__version__}: {type(error).__name__}: {error}"
    return True, f"helion {getattr(helion, '__version__', '?')} imports on torch {torch.__version__}"


class HelionSpace(TaskSpace):
    name = "helion"

    def __init__(self, task_source: str, device: str = "cuda"):
        importable, description = helion_status()
        if not importable:
            raise SpaceUnavailable(f"{description}; on the GPU host: {HOST_FINDING}")
        raise SpaceUnavailable(
            f"{description}, but this task is a PyTorch module with no @helion.kernel to tune: the helion "
            f"space needs tasks written as Helion kernels (not implemented yet); on the GPU host: {HOST_FINDING}"
        )

    def parameters(self) -> dict[str, list[Any]]:  # pragma: no cover - never constructed
        return {}

    def render(self, config: Config) -> str:  # pragma: no cover - never constructed
        raise SpaceUnavailable("helion space unavailable")
