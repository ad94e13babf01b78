"""What a loop leaves behind: every attempt's code, verdict, timing, feedback, tokens and cost, in order.

A trajectory is training data in its own right (refinement traces with verified speed labels), so it keeps the
exact messages the model saw and answered, and round-trips through JSON (`trajectory.json` per task in a run
directory); `kernel-search export-traces` reads them back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

TRAJECTORY_FORMAT = 1


@dataclass
class Attempt:
    """One proposed candidate and what the evaluator said about it."""

    index: int
    origin: str  # who proposed it: inductor, launch-edit, llm, llm-repair, ...
    code: str
    description: str = ""  # the idea or the edit, in words
    parent: int | None = None  # index of the attempt it was derived from
    round: int = 0  # beam round, evolution generation, priority expansion
    island: int | None = None  # evolution island
    stage: str = "full"  # full | correctness (a cascade's cheap first stage only)
    category: str = ""  # the evaluator's verdict (ok, compile_error, ..., reward_hack, fallback)
    correct: bool = False
    hack: str | None = None
    message: str = ""
    runtime_us: float | None = None
    iqr_us: float | None = None
    speedup_vs_eager: float | None = None
    speedup_vs_compile: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)  # eager / compile runtimes (us) of the task
    feedback: str = ""  # what the next proposal is told about this one
    messages: list[dict[str, str]] = field(default_factory=list)  # the prompt and answer, chat-style
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    propose_s: float = 0.0
    eval_s: float = 0.0
    cached: bool = False  # measured before (same source): the stored measurement was reused
    config: dict[str, Any] | None = None  # the launch/options config behind an offline edit

    @property
    def accepted(self) -> bool:
        """Correct and fully measured: only these count as wins (a cascade survivor still needs timing)."""
        return self.correct and self.category == "ok" and self.stage == "full"

    @property
    def rejected_as_hack(self) -> bool:
        return self.category == "reward_hack"

    @property
    def score(self) -> float:
        """Speedup against eager for accepted attempts, 0 otherwise: what every loop maximizes."""
        return float(self.speedup_vs_eager or 0.0) if self.accepted else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Trajectory:
    task: str
    loop: str
    proposer: str  # offline, or the model name
    task_source: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    stop_reason: str = ""
    started_at: float = 0.0  # time.time() when the loop started on this task
    wall_s: float = 0.0
    baselines: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> Attempt | None:
        accepted = [a for a in self.attempts if a.accepted]
        return max(accepted, key=lambda a: (a.score, -a.index)) if accepted else None

    @property
    def prompt_tokens(self) -> int:
        return sum(a.prompt_tokens for a in self.attempts)

    @property
    def completion_tokens(self) -> int:
        return sum(a.completion_tokens for a in self.attempts)

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    def summary(self) -> dict[str, Any]:
        best = self.best
        return {
            "task": self.task,
            "loop": self.loop,
            "proposer": self.proposer,
            "attempts": len(self.attempts),
            "accepted": sum(a.accepted for a in self.attempts),
            "rejected": {
                category: sum(a.category == category for a in self.attempts)
                for category in sorted({a.category for a in self.attempts if not a.accepted})
            },
            "hacks": [a.hack for a in self.attempts if a.rejected_as_hack],
            "best_attempt": best.index if best else None,
            "best_speedup_vs_eager": best.speedup_vs_eager if best else None,
            "best_speedup_vs_compile": best.speedup_vs_compile if best else None,
            "best_runtime_us": best.runtime_us if best else None,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "wall_s": round(self.wall_s, 3),
            "stop_reason": self.stop_reason,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = TRAJECTORY_FORMAT
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        known = {f.name for f in fields(cls)} - {"attempts"}
        trajectory = cls(**{k: v for k, v in data.items() if k in known})
        trajectory.attempts = [Attempt.from_dict(a) for a in data.get("attempts", [])]
        return trajectory

    def save(self, path: Path | str) -> Path:
        from kernel_search.store.rundir import write_json

        path = Path(path)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: Path | str) -> Trajectory:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
