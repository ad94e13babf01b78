"""Size profiles: how large a program's free dimensions are for the machine that runs it.

`cpu` is what the composer writes (validates in about a second on CPU). `gpu` grows the size constants until the
estimated kernel work dominates launch and Python overhead on an H100/H200 (KernelBench-level sizes), within a
memory budget and an upper bound on the estimated time. Budgets live here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    # Estimated forward time to reach: max(target_s, per_op_s * operator calls), from the roofline below.
    target_s: float = 0.0
    per_op_s: float = 0.0
    max_s: float = 0.0  # never grow past this estimate
    memory_budget_bytes: int = (
        0  # estimate: inputs + parameters + every intermediate, never freed (upper bound)
    )
    device_memory_bytes: int = 0  # measured peak on the device while the task is checked and timed
    # Per role, the value a constant grows towards before any role is grown further (KernelBench levels).
    soft_caps: dict[str, int] = field(default_factory=dict)
    hard_caps: dict[str, int] = field(default_factory=dict)
    peak_flops: dict[str, float] = field(default_factory=dict)  # dtype -> FLOP/s used by the estimate
    peak_bytes_per_s: float = 0.0


CPU = Profile("cpu")
GPU = Profile(
    "gpu",
    target_s=1.0e-3,
    per_op_s=60e-6,
    max_s=10e-3,
    memory_budget_bytes=4 << 30,
    device_memory_bytes=12 << 30,
    soft_caps={"batch": 128, "feature": 512, "spatial": 128},
    hard_caps={"batch": 16384, "feature": 16384, "spatial": 4096},
    peak_flops={"float32": 50e12, "bfloat16": 600e12, "float16": 600e12},
    peak_bytes_per_s=4.0e12,
)
PROFILES = {p.name: p for p in (CPU, GPU)}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown size profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
