"""Task search spaces by name: `inductor` (and its enumerable `inductor-small`), `triton-launch`, `helion`."""

from __future__ import annotations

from kernel_search.spaces.base import SpaceUnavailable, TaskSpace

__all__ = ["SpaceUnavailable", "TaskSpace", "make_task_space"]


def make_task_space(name: str, task_source: str, device: str) -> TaskSpace:
    """The space `name` for one KernelBench task (triton-launch works on exported pairs, see pairs.py)."""
    if name in {"inductor", "inductor-small"}:
        from kernel_search.spaces.inductor import InductorSpace

        return InductorSpace(task_source, device, profile="small" if name == "inductor-small" else "full")
    if name == "helion":
        from kernel_search.spaces.helion import HelionSpace

        return HelionSpace(task_source, device)
    raise ValueError(f"unknown space {name!r} for tasks; valid: inductor, inductor-small, helion")
