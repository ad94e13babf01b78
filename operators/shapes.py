"""Shape arithmetic shared by the catalog: output sizes of convs and pools, axis maps, size budgets.

Sizes are kept small on purpose: every program must run eager + torch.compile on a CPU in about a second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from operators.spec import Args, Shape

MAX_NUMEL = 262_144  # largest tensor any op may produce
MAX_PARAMS = 600_000  # largest learnable tensor
MAX_FLOPS = 120_000_000  # per op, multiply-adds counted twice


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def fits(shape: Sequence[int]) -> bool:
    return all(s >= 1 for s in shape) and numel(shape) <= MAX_NUMEL


def as_tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * n


def conv_out(size: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_t_out(size: int, k: int, s: int = 1, p: int = 0, op: int = 0, d: int = 1) -> int:
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


def pool_out(size: int, k: int, s: int, p: int = 0, d: int = 1, ceil: bool = False) -> int:
    eff = size + 2 * p - d * (k - 1) - 1
    out = (-(-eff // s) if ceil else eff // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def identity_map(shape: Shape) -> list[tuple[int, ...]]:
    return [(a,) for a in range(len(shape))]


def reduce_map(rank: int, axes: Sequence[int], keepdim: bool) -> list[tuple[int, ...]]:
    """Input axis -> output axes after reducing `axes` (removed axes map to nothing unless keepdim)."""
    gone = {norm_axis(a, rank) for a in axes}
    out: list[tuple[int, ...]] = []
    j = 0
    for a in range(rank):
        if a in gone and not keepdim:
            out.append(())
            continue
        out.append(() if a in gone else (j,))
        j += 1
    return out


def flatten_map(rank: int, start: int, end: int) -> list[tuple[int, ...]]:
    start, end = norm_axis(start, rank), norm_axis(end, rank)
    return [(a,) if a < start else (start,) if a <= end else (a - (end - start),) for a in range(rank)]


def flatten_shape(shape: Shape, start: int, end: int) -> Shape:
    rank = len(shape)
    start, end = norm_axis(start, rank), norm_axis(end, rank)
    return (*shape[:start], numel(shape[start : end + 1]), *shape[end + 1 :])


def unflatten_map(rank: int, axis: int, parts: int) -> list[tuple[int, ...]]:
    axis = norm_axis(axis, rank)
    out: list[tuple[int, ...]] = []
    for a in range(rank):
        if a < axis:
            out.append((a,))
        elif a == axis:
            out.append(tuple(range(axis, axis + parts)))
        else:
            out.append((a + parts - 1,))
    return out


def insert_map(rank: int, axis: int) -> list[tuple[int, ...]]:
    """Input axis -> output axes after inserting a new axis at `axis` (unsqueeze, stack)."""
    return [(a,) if a < axis else (a + 1,) for a in range(rank)]


def permute_map(perm: Sequence[int]) -> list[tuple[int, ...]]:
    where = {src: dst for dst, src in enumerate(perm)}
    return [(where[a],) for a in range(len(perm))]


def reshape_map(src: Shape, dst: Shape) -> list[tuple[int, ...]] | None:
    """Map axes of a reshape made of merges/splits of adjacent axes; None when not expressible that way."""
    out: list[tuple[int, ...]] = []
    i = j = 0
    while i < len(src) and j < len(dst):
        gi, gj = [i], [j]
        pi, pj = src[i], dst[j]
        while pi != pj:
            if pi < pj:
                i += 1
                if i >= len(src):
                    return None
                gi.append(i)
                pi *= src[i]
            else:
                j += 1
                if j >= len(dst):
                    return None
                gj.append(j)
                pj *= dst[j]
        for _ in gi:
            out.append(tuple(gj))
        i += 1
        j += 1
    if len(out) != len(src):
        return None
    return out


def factor_pairs(n: int, lo: int = 2) -> list[tuple[int, int]]:
    """(a, b) with a*b == n and both >= lo."""
    return [(a, n // a) for a in range(lo, n // lo + 1) if n % a == 0 and n // a >= lo]


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def pick_size(rng: random.Random, choices: Sequence[int], limit: int) -> int | None:
    """A random choice not above `limit` (None when none fits)."""
    ok = [c for c in choices if c <= limit]
    return rng.choice(ok) if ok else None


def spatial_axes(rank: int, nd: int) -> tuple[int, ...]:
    return tuple(range(rank - nd, rank))


def channel_budget(shape_after: Shape, channel_axis: int) -> int:
    """How large the channel axis may grow before the tensor exceeds MAX_NUMEL."""
    others = numel(shape_after) // max(1, shape_after[channel_axis])
    return MAX_NUMEL // max(1, others)


def args_flops(out_shape: Shape, per_output: int) -> int:
    return 2 * numel(out_shape) * per_output


def last_axis(shape: Shape) -> tuple[int, ...]:
    return (len(shape) - 1,)


def channel_axis(shape: Shape, args: Args | None = None) -> tuple[int, ...]:
    return (1,)
