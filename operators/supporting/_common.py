"""Helpers shared by the supporting-op tables: defaults, axis choice, value models."""

from __future__ import annotations

import random
from typing import Any

from operators.spec import Args, Kind, OpSpec, Shape, Values

ANY_RANK = frozenset({2, 3, 4, 5})
INF = float("inf")


def same_shape(shape: Shape, args: Args) -> Shape:
    return shape


def no_args(rng: random.Random, shape: Shape) -> Args:
    return {}


def supporting(name: str, category: str, hint: str, **fields: Any) -> OpSpec:
    """An OpSpec of kind SUPPORTING with the common defaults (any rank, no args, shape preserved)."""
    fields.setdefault("ranks", ANY_RANK)
    fields.setdefault("make_args", no_args)
    fields.setdefault("out_shape", same_shape)
    return OpSpec(name=name, kind=Kind.SUPPORTING, category=category, prompt_hint=hint, **fields)


def axis_choices(shape: Shape, min_size: int = 2, max_size: int | None = None) -> list[int]:
    """Non-batch axes whose size is in [min_size, max_size]."""
    return [
        a for a in range(1, len(shape)) if shape[a] >= min_size and (max_size is None or shape[a] <= max_size)
    ]


def spell_axis(rng: random.Random, axis: int, rank: int) -> int:
    """Write an axis as positive or negative index (both appear in real code)."""
    return axis - rank if rng.random() < 0.4 else axis


def pick_axis(rng: random.Random, shape: Shape, min_size: int = 2, max_size: int | None = None) -> int | None:
    options = axis_choices(shape, min_size, max_size)
    if not options:
        return None
    return spell_axis(rng, rng.choice(options), len(shape))


def norm(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def dims_of(args: Args, rank: int, key: str = "dim") -> tuple[int, ...]:
    value = args[key]
    items = value if isinstance(value, (tuple, list)) else (value,)
    return tuple(sorted(norm(int(a), rank) for a in items))


def fixed(mean: float, std: float, lo: float = -INF, hi: float = INF):
    """A value model that ignores the input (bounded activations)."""
    out = Values(mean, std, lo, hi)
    return lambda v, a: out


def scaled(factor: float, *, nonneg: bool = False):
    def values(v: Values, a: Args) -> Values:
        std = max(v.std * factor, 1e-3)
        if nonneg:
            return Values(max(v.mean, 0.0) + 0.4 * v.std, std, 0.0, max(v.hi, 0.0))
        return Values(v.mean * factor, std, v.lo, v.hi)

    return values


def monotone(fn, spread: float = 1.0):
    """Values after an increasing map: bounds map through `fn`, the spread shrinks by `spread` at most."""

    def values(v: Values, a: Args) -> Values:
        lo, hi = fn(max(v.lo, v.mean - 5 * v.std)), fn(min(v.hi, v.mean + 5 * v.std))
        mean = min(max(fn(v.mean), lo), hi)
        return Values(mean, max(min(v.std * spread, (hi - lo) / 2), 1e-4), lo, hi)

    return values


def keep(v: Values, a: Args) -> Values:
    return v
