"""What the composer knows about a tensor while it writes a program: shape, rough values, and the facts that
would make a later op degenerate.

Facts (value-level invariants over a set of axes) exist so the composer never writes, e.g., a softmax followed by
a sum over the same axis (constant 1) or a normalization followed by a mean over the normalized axes (~0).
Pending items are learnable shifts/scales that a later normalization could cancel exactly (a conv bias before an
InstanceNorm has zero gradient); the composer switches them off or separates them with a nonlinearity.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from operators.spec import Values

_KEYS = itertools.count(1)


def new_key() -> int:
    """A fresh value identity (values with equal keys are equal element-wise)."""
    return next(_KEYS)


@dataclass(frozen=True)
class Fact:
    """`kind` holds over `axes`: sum_const / mean_const / var_const / norm_const / lse_const."""

    kind: str
    axes: frozenset[int]


@dataclass(frozen=True)
class Pending:
    """A learnable shift or scale owned by `node` that varies only along `axes` (empty: a scalar)."""

    kind: str
    axes: frozenset[int]
    node: int
    switch: str | None  # the arg that turns it off (None: cannot be turned off)


@dataclass(frozen=True)
class TensorState:
    shape: tuple[int, ...]
    values: Values = field(default_factory=Values)
    dtype: str = "float"
    facts: frozenset[Fact] = frozenset()
    pending: tuple[Pending, ...] = ()
    key: int = 0  # equal keys: equal values
    affine_key: int = 0  # equal affine keys: one value is an affine function of the other
    elementwise_key: int = 0  # equal keys: one value is an element-wise function of the other
    contiguous: bool = True
    sources: tuple[tuple[int, tuple[int, str]], ...] = ()  # (axis, (node id, arg name)) defining its size

    @property
    def rank(self) -> int:
        return len(self.shape)

    def source(self, axis: int) -> tuple[int, str] | None:
        return dict(self.sources).get(axis)

    def evolve(self, **changes: object) -> TensorState:
        return replace(self, **changes)


def remap_axes(axes: frozenset[int], axis_map: list[tuple[int, ...]]) -> frozenset[int]:
    out: set[int] = set()
    for a in axes:
        if a < len(axis_map):
            out.update(axis_map[a])
    return frozenset(out)


def remap_facts(facts: frozenset[Fact], axis_map: list[tuple[int, ...]]) -> frozenset[Fact]:
    out = set()
    for fact in facts:
        axes = remap_axes(fact.axes, axis_map)
        if axes:
            out.add(Fact(fact.kind, axes))
    return frozenset(out)


def remap_pending(pending: tuple[Pending, ...], axis_map: list[tuple[int, ...]]) -> tuple[Pending, ...]:
    return tuple(replace(p, axes=remap_axes(p.axes, axis_map)) for p in pending)
