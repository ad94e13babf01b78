"""What the catalog knows about one operator: shapes, arguments, emission forms, value semantics, Inductor status.

An `OpSpec` is data, not code generation: the composer (synth_modules/composer) reads it to plan shapes and
avoid degenerate programs, the prompt templates show its `prompt_hint`, and the contamination/report code uses its
canonical `name`. Per-op behaviour that cannot be a plain value (argument choice, shape transfer) is a small
function of the input shape.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Shape = tuple[int, ...]
Args = dict[str, Any]
ArgsFn = Callable[[random.Random, Shape], "Args | None"]
ShapeFn = Callable[[Shape, Args], Shape]
AxesFn = Callable[[Shape, Args], tuple[int, ...]]
AxisMapFn = Callable[[Shape, Args], list[tuple[int, ...]]]


@dataclass(frozen=True)
class Values:
    """A rough model of a tensor's values: typical mean/std and hard bounds (may be infinite).

    Good enough to pick clamp bounds inside the data, keep exp from overflowing and log away from zero.
    """

    mean: float = 0.0
    std: float = 1.0
    lo: float = float("-inf")
    hi: float = float("inf")
    loose: bool = False  # the estimate is rough (after x @ x^T, exp, products...): don't place bounds by it

    @property
    def rms(self) -> float:
        return (self.mean**2 + self.std**2) ** 0.5

    @property
    def positive(self) -> bool:
        return self.lo > 0.0

    @property
    def nonnegative(self) -> bool:
        return self.lo >= 0.0

    @property
    def typical_max(self) -> float:
        """A magnitude that values rarely exceed (5 sigma), capped by the hard bounds."""
        top = abs(self.mean) + 5.0 * self.std
        return min(top, max(abs(self.lo), abs(self.hi)))

    def bounded(self, lo: float, hi: float) -> Values:
        """Values after a map into [lo, hi] that roughly keeps the spread."""
        lo2, hi2 = max(self.lo, lo), min(self.hi, hi)
        if lo2 > hi2:
            lo2, hi2 = lo, hi
        mean = min(max(self.mean, lo2), hi2)
        std = min(self.std, (hi2 - lo2) / 2.0) if hi2 > lo2 else 0.0
        return Values(mean, std, lo2, hi2)


ValuesFn = Callable[[Values, Args], Values]


class Kind(str, Enum):
    """Which of popcorn's three lists an op is sampled from."""

    CORE = "core"
    COMPOUND = "compound"
    SUPPORTING = "supporting"

    def __str__(self) -> str:
        return self.value


class Effect(str, Enum):
    """How an op changes values; the composer uses it to track facts that make outputs degenerate."""

    IDENTITY = "identity"  # values unchanged (dropout in eval, Identity)
    LAYOUT = "layout"  # values rearranged, selected or padded (reshape, permute, pad, slice)
    AFFINE = "affine"  # element-wise linear (scale / shift), incl. BatchNorm in eval
    NONLINEAR = "nonlinear"  # element-wise nonlinear
    MIX = "mix"  # linear mixing along `axes` (conv, linear, matmul)
    REDUCE_LINEAR = "reduce_linear"  # sum / mean over `axes`
    REDUCE = "reduce"  # other reductions over `axes` (max, logsumexp, std, norm, ...)
    POOL = "pool"  # windowed reduction (same rank)
    NORMALIZE = "normalize"  # normalizes over `axes` (norms, softmax family)
    BLOCK = "block"  # composite layer (attention, recurrent, transformer, embedding)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class InductorSupport:
    """native: lowered by Inductor; fallback: runs as an ATen/eager fallback inside the compiled program;
    unsupported: kept in the catalog for completeness but never sampled (reason says why)."""

    status: str = "native"
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in {"native", "fallback", "unsupported"}:
            raise ValueError(f"bad inductor status {self.status!r}")
        if self.status != "native" and not self.reason:
            raise ValueError("a non-native inductor status needs a reason")


NATIVE = InductorSupport()


def fallback(reason: str) -> InductorSupport:
    return InductorSupport("fallback", reason)


def unsupported(reason: str) -> InductorSupport:
    return InductorSupport("unsupported", reason)


@dataclass(frozen=True)
class ParamSpec:
    """A learnable tensor the functional form needs (`self.<name> = nn.Parameter(...)`).

    `shape` entries are Python expressions over argument names (e.g. "out_channels", "in_channels // groups"),
    rendered with the __init__ argument names. `init`: "normal" (randn * std with std = 1/sqrt(fan_in)),
    "unit" (randn), "small" (randn * 0.02), "ones_jitter" (1 + 0.1 randn), "positive" (rand + 0.5).
    """

    shape: tuple[str, ...]
    init: str = "normal"
    fan_in: str | None = None  # expression over args; default: product of shape[1:]
    optional_arg: str | None = None  # bool arg that, when False, replaces this param by None (bias=False)


@dataclass(frozen=True)
class Operand:
    """The second input of a binary op: which kinds the op accepts and the range of a scalar constant."""

    kinds: tuple[str, ...]  # any of "scalar", "param", "tensor", "self"
    scalar_range: tuple[float, float] = (0.25, 2.0)  # magnitude range of a scalar constant
    signed: bool = True  # scalar may be negative
    param_init: str = "small"  # how a learnable operand is initialised
    learnable: str = "shift"  # what a learnable operand does to values: "shift" | "scale" | "other"
    param_full: bool = False  # a learnable operand must vary along every non-batch axis (not a scalar)
    overlap: bool = False  # the operand's values must overlap x's (max/min of disjoint ranges is constant)


@dataclass(frozen=True)
class OpSpec:
    """One operator of the catalog.

    Emission: `module` is the nn class path ("nn.Conv2d") constructed with `positional` args first and the
    rest as keywords; `call` is how forward uses it ({m} the module, {x} the input, {y} the operand).
    `functional` lists alternative forward expressions ({x}, {y}, {<arg>}, {<param>} placeholders).
    """

    name: str
    kind: Kind
    category: str
    ranks: frozenset[int]
    make_args: ArgsFn
    out_shape: ShapeFn
    prompt_hint: str
    module: str | None = None
    positional: tuple[str, ...] = ()
    call: str | Callable[[Args], str] = "{m}({x})"
    functional: tuple[str, ...] | Callable[[Args], tuple[str, ...]] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)  # ctor defaults (left out when rendering)
    module_only: frozenset[str] = frozenset()  # args only the module form honours (padding_mode, ...)
    params: Callable[[Args], Mapping[str, ParamSpec]] | None = None
    operand: Operand | None = None
    effect: Effect = Effect.NONLINEAR
    axes: AxesFn | None = None  # axes reduced / normalized / mixed
    axis_map: AxisMapFn | None = None  # input axis -> output axes; None: identity (same rank)
    values: ValuesFn | None = None  # output value model; None: the composer's default for `effect`
    value_args: Mapping[str, str] = field(default_factory=dict)  # arg -> "z" | "mag": in units of the data
    domain: str | None = None  # required input domain: positive | bounded | has_negative
    # Value facts the output has over `fact_axes` (default `axes`): sum_const, mean_const, var_const, norm_const,
    # lse_const, uniform (values equal along the axes), padded (constant border along the axes).
    facts: tuple[str, ...] | Callable[[Args], tuple[str, ...]] = ()
    fact_axes: AxesFn | None = None  # output axes of the new facts
    fact_map: Mapping[str, str] = field(default_factory=dict)  # nonlinear ops that turn one fact into another
    constant_if: tuple[str, ...] = ()  # facts over a subset of `axes` that would make the output constant
    cancels: tuple[str, ...] = ()  # learnable "shift"/"scale" constant along `axes` that this op cancels
    # The op's own learnable shift/scale (conv bias, norm affine): kind -> the bool constructor arg that turns
    # it off (None: it cannot be turned off), and the axes it varies along.
    learnable_affine: Mapping[str, str | None] = field(default_factory=dict)
    affine_axes: AxesFn | None = None
    derived: Mapping[str, int] = field(default_factory=dict)  # arg -> input axis it equals (in_channels: 1)
    out_dims: Mapping[int, str] = field(default_factory=dict)  # output axis -> arg defining its size
    implies: tuple[
        str, ...
    ] = ()  # other catalog ops every emission of this op also uses (MaxUnpool: MaxPool)
    needs_contiguous: bool = False  # view(): the composer makes the input contiguous first when needed
    input_dtype: str = "float"  # "long": consumes integer indices (Embedding)
    head_only: bool = False  # only as the first op (consumes the program's integer input)
    learnable: bool = False  # has parameters in module style
    attr: str = ""  # preferred attribute name in module style
    inductor: InductorSupport = NATIVE
    aliases: tuple[str, ...] = ()

    @property
    def sampleable(self) -> bool:
        """Unsupported ops stay in the catalog (documented) but are never sampled by default."""
        return self.inductor.status != "unsupported"

    def fact_kinds(self, args: Args) -> tuple[str, ...]:
        return tuple(self.facts(args) if callable(self.facts) else self.facts)

    def call_form(self, args: Args) -> str:
        return self.call(args) if callable(self.call) else self.call

    def functional_forms(self, args: Args) -> tuple[str, ...]:
        forms = self.functional(args) if callable(self.functional) else self.functional
        return tuple(forms)

    def param_specs(self, args: Args) -> Mapping[str, ParamSpec]:
        return self.params(args) if self.params is not None else {}

    @property
    def styles(self) -> tuple[str, ...]:
        out = []
        if self.module:
            out.append("module")
        if self.functional:
            out.append("functional")
        return tuple(out)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (docs, reports, prompts)."""
        return {
            "name": self.name,
            "kind": str(self.kind),
            "category": self.category,
            "ranks": sorted(self.ranks),
            "styles": list(self.styles),
            "inductor": self.inductor.status,
            "inductor_reason": self.inductor.reason,
            "prompt_hint": self.prompt_hint,
        }
