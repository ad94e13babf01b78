"""Plain data types passed between pipeline stages.

Everything here is a dataclass of JSON-friendly fields so it can cross process (and Ray) boundaries and be
written to the run ledgers without custom encoders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class _ValueEnum(str, Enum):
    """str() is the value, so ledgers, messages and f-strings show `timeout`, not `Category.TIMEOUT`."""

    def __str__(self) -> str:
        return self.value


class Category(_ValueEnum):
    """Failure categories (DESIGN.md contract: extend, never rename)."""

    LLM_ERROR = "llm_error"
    EXTRACTION_FAILURE = "extraction_failure"
    SYNTAX_ERROR = "syntax_error"
    STRUCTURE_ERROR = "structure_error"
    UNSAFE_CODE = "unsafe_code"
    IMPORT_ERROR = "import_error"
    INIT_ERROR = "init_error"
    EAGER_ERROR = "eager_error"
    NONDETERMINISTIC = "nondeterministic"
    COMPILE_ERROR = "compile_error"
    MISMATCH = "mismatch"
    SHAPE_ERROR = "shape_error"
    DEGENERATE_OUTPUT = "degenerate_output"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    CRASH = "crash"
    CONTAMINATED = "contaminated"
    # the contamination gate could not read the program's op sequence, so it cannot clear it (fails closed)
    UNREADABLE_OPS = "unreadable_ops"
    DUPLICATE = "duplicate"
    NAME_COLLISION = "name_collision"  # the program's file name is taken in the output directory
    # export-pairs (Inductor capture on CUDA -> verified PyTorch/Triton pair)
    CAPTURE_FAILURE = "capture_failure"
    GRAPH_BREAK = "graph_break"
    UNSUPPORTED = "unsupported"


class Stage(_ValueEnum):
    """Where in the flow a candidate was decided."""

    GENERATE = "generate"
    EXTRACT = "extract"
    STATIC = "static"
    LOAD = "load"
    INIT = "init"
    EAGER = "eager"
    COMPILE = "compile"
    COMPARE = "compare"
    SHAPE = "shape"
    DEGENERATE = "degenerate"
    SANDBOX = "sandbox"
    GATE = "gate"
    DONE = "done"


@dataclass
class Sample:
    """One draw from the operator catalog: the unit of work, identified deterministically."""

    index: int
    id: str
    seed: int
    core_ops: list[str]
    compound_ops: list[str]
    supporting_ops: list[str]

    @property
    def sampled_ops(self) -> list[str]:
        return [*self.core_ops, *self.compound_ops, *self.supporting_ops]


@dataclass
class Usage:
    """Token accounting for one backend call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls


@dataclass
class RepairContext:
    """What a repair attempt knows about the previous failed candidate."""

    previous_source: str
    category: str
    message: str


@dataclass
class GenerationRequest:
    sample: Sample
    entry_point: str
    attempt: int = 0
    repair: RepairContext | None = None
    dtype: str | None = None  # the program's dtype (None: the backend's config decides, float32 by default)


@dataclass
class Generation:
    """A backend's answer: a complete program source (class already named `entry_point`)."""

    source: str
    entry_point: str
    final_pattern: list[str]
    backend: str
    model: str
    prompt_sha256: str = ""
    prompt: str = ""
    response: str = ""
    usage: Usage = field(default_factory=Usage)
    expected_output_shapes: list[list[int]] | None = None
    cached: bool = False


class GenerationError(Exception):
    """A backend could not produce a candidate; carries its failure category."""

    def __init__(self, category: Category, message: str, usage: Usage | None = None, response: str = ""):
        super().__init__(message)
        self.category = Category(category)
        self.message = message
        self.usage = usage or Usage()
        self.response = response


@dataclass
class Verdict:
    """Outcome of validating one program (static checks + sandbox run)."""

    ok: bool
    stage: str
    category: str | None = None
    message: str = ""
    seconds: float = 0.0
    input_shapes: list[list[int]] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def reject(cls, stage: Stage | str, category: Category | str, message: str, **kw: Any) -> Verdict:
        return cls(ok=False, stage=str(stage), category=str(category), message=message, **kw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class GateDecision:
    """A quality gate's keep-or-reject answer with its reason."""

    keep: bool
    category: str | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def accept(cls, reason: str = "", **details: Any) -> GateDecision:
        return cls(keep=True, reason=reason, details=details)

    @classmethod
    def reject(cls, category: Category | str, reason: str, **details: Any) -> GateDecision:
        return cls(keep=False, category=str(category), reason=reason, details=details)
