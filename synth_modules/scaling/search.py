"""Rescale a program to a size profile: grow its size constants until the estimated work reaches the target.

Greedy and checked at every step: double one constant (batch first, then features/channels, then spatial, each
up to the profile's soft cap, then beyond up to the hard caps), re-run the program's cost estimate, and keep the
step only if the program still runs, stays within the memory budget and below the maximum estimated time. A
constant whose doubling breaks the program (a size the code hard-codes elsewhere, a reshape) is frozen, so any
program whose size constants can be identified is rescaled as far as it stays valid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synth_modules.scaling.constants import SizeConstant, find_size_constants, rewrite_constants
from synth_modules.scaling.estimate import Estimate
from synth_modules.scaling.profiles import Profile

_ROLE_ORDER = ("batch", "feature", "spatial")
_MAX_STEPS = 48

EstimateFn = Callable[[str], Estimate]


@dataclass
class Scaled:
    source: str
    values: dict[str, int] = field(default_factory=dict)  # the constants that changed: name -> new value
    original: dict[str, int] = field(default_factory=dict)
    estimate: Estimate | None = None
    estimated_s: float = 0.0
    target_s: float = 0.0
    frozen: list[str] = field(default_factory=list)  # constants whose growth broke the program
    steps: int = 0
    reason: str = ""  # why it stopped

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "original": self.original,
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "estimated_us": round(self.estimated_s * 1e6, 1),
            "target_us": round(self.target_s * 1e6, 1),
            "frozen": self.frozen,
            "steps": self.steps,
            "reason": self.reason,
        }


def _next_candidate(
    constants: list[SizeConstant], values: dict[str, int], frozen: set[str], profile: Profile
) -> str | None:
    for caps in (profile.soft_caps, profile.hard_caps):
        for role in _ROLE_ORDER:
            for const in constants:
                cap = caps.get(role, 0)
                if const.role == role and const.name not in frozen and values[const.name] * 2 <= cap:
                    return const.name
    return None


def scale_source(
    source: str, profile: Profile, estimate: EstimateFn, dtype: str = "float32", budget_s: float = 30.0
) -> Scaled:
    """`source` rescaled to `profile` (unchanged for a profile without targets or a program without sizes).

    Far below the target a constant grows 4x per step, near it 2x; `budget_s` bounds the search's own time
    (a program with thousands of operator calls, an unrolled RNN, estimates slowly)."""
    constants = [c for c in find_size_constants(source) if c.role != "fixed"]
    values = {c.name: c.value for c in constants}
    result = Scaled(source=source, original=dict(values))
    if profile.target_s <= 0 or not constants:
        result.reason = "no target" if profile.target_s <= 0 else "no size constants"
        return result
    peak_flops = profile.peak_flops.get(dtype, profile.peak_flops["float32"])

    def seconds(e: Estimate) -> float:
        return e.seconds(peak_flops, profile.peak_bytes_per_s)

    current = estimate(source)  # raises if the program does not run at its own sizes
    result.estimate, result.estimated_s = current, seconds(current)
    frozen: set[str] = set()
    deadline = time.monotonic() + budget_s
    for _ in range(_MAX_STEPS):
        if time.monotonic() > deadline:
            result.reason = "time budget"
            break
        result.target_s = min(max(profile.target_s, profile.per_op_s * current.op_calls), profile.max_s / 2)
        if result.estimated_s >= result.target_s:
            result.reason = "target reached"
            break
        name = _next_candidate(constants, values, frozen, profile)
        if name is None:
            result.reason = "every size at its cap or frozen"
            break
        factor = 4 if result.estimated_s * 16 < result.target_s else 2
        cap = max(profile.hard_caps.get(c.role, 0) for c in constants if c.name == name)
        trial = {**values, name: min(values[name] * factor, max(cap, values[name] * 2))}
        text = rewrite_constants(source, constants, trial)
        try:
            grown = estimate(text)
        except Exception:  # the program's own code rejects the size: this constant stops growing
            frozen.add(name)
            continue
        if grown.memory_bytes > profile.memory_budget_bytes or seconds(grown) > profile.max_s:
            frozen.add(name)
            continue
        values, current = trial, grown
        result.source, result.estimate, result.estimated_s = text, grown, seconds(grown)
        result.steps += 1
    else:
        result.reason = "step limit"
    result.values = {k: v for k, v in values.items() if v != result.original[k]}
    result.frozen = sorted(frozen)
    return result
