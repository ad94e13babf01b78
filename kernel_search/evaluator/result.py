"""The one result record every evaluation returns, whatever the outcome (KernelBench's habit).

A failing stage fills `category` (and `hack` for a reward hack) and returns the record early; nothing raises for
a candidate's fault. `to_json()` is the `kernel-search eval --json` line and a row of results.jsonl.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

OK = "ok"
COMPILE_ERROR = "compile_error"
RUNTIME_ERROR = "runtime_error"
MISMATCH = "mismatch"
TIMEOUT = "timeout"
CRASH = "crash"
REWARD_HACK = "reward_hack"
FALLBACK = "fallback"
CATEGORIES = (OK, COMPILE_ERROR, RUNTIME_ERROR, MISMATCH, TIMEOUT, CRASH, REWARD_HACK, FALLBACK)

# Result flags (warnings that do not change the category).
FLAG_EXCESSIVE_SPEEDUP = "excessive_speedup"  # a > 3x win, re-measured in isolation
FLAG_CLOCK_DISAGREEMENT = "clock_disagreement"  # host wall time far above CUDA events: host clock used
FLAG_CONSTANT_REFERENCE = "constant_reference"  # the task's output does not depend on its inputs


@dataclass
class EvalResult:
    task: str
    candidate: str
    correct: bool = False
    category: str = CRASH
    hack: str | None = None
    message: str = ""
    runtime_us: float | None = None
    iqr_us: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    speedup_vs_eager: float | None = None
    speedup_vs_compile: float | None = None
    device: str = "cpu"
    gpu: str | None = None
    flags: list[str] = field(default_factory=list)
    correctness: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    phase: str = ""  # the worker phase reached (load, correctness, timing, recheck, profile, done)
    seconds: float = 0.0  # wall time of the whole evaluation, worker start included

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; valid: {', '.join(CATEGORIES)}")

    @property
    def counts_as_win(self) -> bool:
        """Only an accepted candidate's speedup counts (fallbacks and hacks never do)."""
        return self.category == OK and self.correct

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def failure(cls, task: str, candidate: str, category: str, message: str, **extra: Any) -> EvalResult:
        return cls(task=task, candidate=candidate, correct=False, category=category, message=message, **extra)
