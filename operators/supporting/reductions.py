"""Reductions and scans over non-batch axes (sum, mean, max, logsumexp, std, norm, cumsum, topk, sort, ...)."""

from __future__ import annotations

import math
import random
from typing import Any

from operators.shapes import numel, reduce_map
from operators.spec import Args, Effect, OpSpec, Shape, Values, ValuesFn, fallback
from operators.supporting._common import axis_choices, dims_of, keep, norm, spell_axis, supporting


def _reduce_args(*, multi: bool, min_size: int = 2, max_size: int | None = None):
    def make(rng: random.Random, shape: Shape) -> Args | None:
        options = axis_choices(shape, min_size, max_size)
        if not options:
            return None
        rank = len(shape)
        if multi and len(options) >= 2 and rng.random() < 0.3:
            pair = sorted(rng.sample(options, 2))
            dim: int | tuple[int, ...] = tuple(spell_axis(rng, a, rank) for a in pair)
        else:
            dim = spell_axis(rng, rng.choice(options), rank)
        return {"dim": dim, "keepdim": rng.random() < 0.35}

    return make


def _reduce_shape(shape: Shape, a: Args) -> Shape:
    axes = set(dims_of(a, len(shape)))
    if a.get("keepdim"):
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _reduce_map(shape: Shape, a: Args) -> list[tuple[int, ...]]:
    return reduce_map(len(shape), dims_of(a, len(shape)), bool(a.get("keepdim")))


def _axes(shape: Shape, a: Args) -> tuple[int, ...]:
    return dims_of(a, len(shape))


def _count(shape: Shape, a: Args) -> int:
    return numel([shape[i] for i in dims_of(a, len(shape))])


def _forms(fn: str, method: str, *, suffix: str = "", positional_ok: bool = True):
    def forms(a: Args) -> tuple[str, ...]:
        kd = ", keepdim=True" if a.get("keepdim") else ""
        out = [f"torch.{fn}({{x}}, dim={{dim}}{kd}){suffix}", f"{{x}}.{method}(dim={{dim}}{kd}){suffix}"]
        if positional_ok:
            out.append(f"{{x}}.{method}({{dim}}{kd}){suffix}")
        return tuple(out)

    return forms


def _sum_values(v: Values, a: Args) -> Values:
    n = a.get("_count", 4)
    return Values(v.mean * n, max(v.std * math.sqrt(n), 1e-3), -math.inf if v.lo < 0 else 0.0, math.inf)


def _mean_values(v: Values, a: Args) -> Values:
    n = a.get("_count", 4)
    return Values(v.mean, max(v.std / math.sqrt(n), 1e-3), v.lo, v.hi)


def _extreme(v: Values, a: Args, sign: float) -> Values:
    """Max (sign 1) or min (sign -1) of `_count` values: about sqrt(2 ln n) standard deviations out."""
    shift = v.std * math.sqrt(2 * math.log(max(a.get("_count", 2), 2)))
    raw = v.mean + sign * shift
    mean = min(max(raw, v.lo), v.hi)
    # Extremes that run into a bound (ELU's -alpha, sigmoid's 0) pile up there: the spread is unknown.
    return Values(mean, max(v.std * 0.4, 1e-3), v.lo, v.hi, loose=mean != raw)


def _reduction(name: str, hint: str, *, multi: bool = True, linear: bool = False, **fields) -> OpSpec:
    fields.setdefault("make_args", _reduce_args(multi=multi))
    return supporting(
        name,
        "reduction",
        hint,
        out_shape=_reduce_shape,
        axis_map=_reduce_map,
        axes=_axes,
        effect=Effect.REDUCE_LINEAR if linear else Effect.REDUCE,
        **fields,
    )


def _average(fn: str, what: str, values: ValuesFn) -> OpSpec:
    """sum and mean: linear reductions that differ only in scale."""
    return _reduction(
        fn,
        f"torch.{fn}(x, dim, keepdim=False): {what}",
        linear=True,
        functional=_forms(fn, fn),
        values=values,
        constant_if=("sum_const", "mean_const"),
        aliases=(fn.capitalize(),),
    )


def _values_forms(fn: str):
    """torch.max/min(x, dim) return (values, indices): forms that keep the values."""
    return lambda a: _forms(fn, fn, suffix=".values")(a)[:2] + _forms(fn, fn, suffix="[0]")(a)[:1]


def _extremum(fn: str, sign: float, *, multi: bool) -> OpSpec:
    """amax/amin (over dims), max/min (one dim, .values): the largest (sign 1) or smallest (sign -1) value."""
    word = "max" if sign > 0 else "min"
    return _reduction(
        fn,
        f"torch.{fn}(x, dim, keepdim=False): {word} over dim(s)"
        if multi
        else f"torch.{fn}(x, dim, keepdim=False).values: {word} over one dim",
        multi=multi,
        functional=_forms(fn, fn, positional_ok=False) if multi else _values_forms(fn),
        values=lambda v, a: _extreme(v, a, sign),
        constant_if=("padded", "ceil") if sign > 0 else ("padded", "floor"),
        cancels=("negpart",) if sign > 0 else (),
        aliases=() if multi else (fn.capitalize(),),
    )


def _spread(fn: str, what: str, values: ValuesFn) -> OpSpec:
    """std and var: spread over at least four values; a shift cancels, a uniform axis is constant."""
    return _reduction(
        fn,
        f"torch.{fn}(x, dim, keepdim=False): {what} over dim(s) (unbiased)",
        make_args=_reduce_args(multi=True, min_size=4),
        functional=_forms(fn, fn),
        values=values,
        constant_if=("var_const", "uniform"),
        cancels=("shift",),
    )


def _scan_args(rng: random.Random, shape: Shape) -> Args | None:
    options = axis_choices(shape, 2, 512)
    if not options:
        return None
    return {"dim": spell_axis(rng, rng.choice(options), len(shape))}


def _topk_args(rng: random.Random, shape: Shape) -> Args | None:
    options = axis_choices(shape, 4)
    if not options:
        return None
    axis = rng.choice(options)
    return {"k": rng.randint(2, max(2, shape[axis] // 2)), "dim": spell_axis(rng, axis, len(shape))}


def _topk_shape(shape: Shape, a: Args) -> Shape:
    axis = norm(a["dim"], len(shape))
    return tuple(a["k"] if i == axis else s for i, s in enumerate(shape))


def _single_axis(shape: Shape, a: Args) -> tuple[int, ...]:
    return (norm(a["dim"], len(shape)),)


def _scan(
    name: str,
    hint: str,
    forms: tuple[str, ...],
    effect: Effect,
    values: ValuesFn,
    reason: str = "",
    **fields: Any,
) -> OpSpec:
    """cumsum, cummax, logcumsumexp: a running reduction along one axis that Inductor runs as a fallback."""
    reason = reason or f"aten.{name} has no Inductor lowering; it runs as an ATen fallback kernel"
    return supporting(
        name,
        "scan",
        hint,
        functional=forms,
        make_args=_scan_args,
        effect=effect,
        axes=_single_axis,
        values=values,
        inductor=fallback(reason),
        **fields,
    )


REDUCTIONS: tuple[OpSpec, ...] = (
    _average("sum", "sums over dim(s)", _sum_values),
    _average("mean", "averages over dim(s)", _mean_values),
    _extremum("amax", 1.0, multi=True),
    _extremum("amin", -1.0, multi=True),
    _extremum("max", 1.0, multi=False),
    _extremum("min", -1.0, multi=False),
    _reduction(
        "logsumexp",
        "torch.logsumexp(x, dim, keepdim=False): log(sum(exp(x))) over dim(s), numerically stable",
        functional=_forms("logsumexp", "logsumexp"),
        values=lambda v, a: Values(v.mean + math.log(a.get("_count", 4)) + v.std, v.std * 0.5),
        constant_if=("lse_const",),
        aliases=("LogSumExp",),
    ),
    _spread("std", "standard deviation", lambda v, a: Values(v.std, max(v.std * 0.3, 1e-3), 0.0, math.inf)),
    _spread("var", "variance", lambda v, a: Values(v.std**2, max(v.std**2 * 0.4, 1e-3), 0.0, math.inf)),
    _reduction(
        "norm",
        "torch.linalg.vector_norm(x, ord=2, dim) / x.norm(dim=...): p-norm over dim(s)",
        functional=lambda a: (
            "torch.norm({x}, p=2, dim={dim}" + (", keepdim=True)" if a.get("keepdim") else ")"),
            "torch.linalg.vector_norm({x}, dim={dim}" + (", keepdim=True)" if a.get("keepdim") else ")"),
            "{x}.norm(dim={dim}" + (", keepdim=True)" if a.get("keepdim") else ")"),
        ),
        values=lambda v, a: Values(v.rms * math.sqrt(a.get("_count", 4)), v.rms, 0.0, math.inf),
        constant_if=("norm_const",),
        aliases=("vector_norm", "Norm"),
    ),
    _reduction(
        "prod",
        "torch.prod(x, dim, keepdim=False): product over one (short) dim",
        multi=False,
        make_args=_reduce_args(multi=False, min_size=2, max_size=4),
        functional=_forms("prod", "prod"),
        values=lambda v, a: Values(v.mean ** a.get("_count", 2), max(v.rms ** a.get("_count", 2), 1e-3)),
        domain="unit_scale",
    ),
    _reduction(
        "median",
        "torch.median(x, dim, keepdim=False).values: median over one dim",
        multi=False,
        functional=lambda a: (
            _forms("median", "median", suffix=".values")(a)[:2]
            + _forms("median", "median", suffix="[0]")(a)[2:]
        ),
        values=lambda v, a: Values(v.mean, v.std * 0.4, v.lo, v.hi),
        constant_if=("padded", "floor", "ceil"),
    ),
    _scan(
        "cumsum",
        "torch.cumsum(x, dim): running sum along dim, shape preserved",
        ("torch.cumsum({x}, dim={dim})", "{x}.cumsum(dim={dim})", "{x}.cumsum({dim})"),
        Effect.MIX,
        lambda v, a: Values(v.mean * 8, v.std * 4 + abs(v.mean) * 8),
        "Inductor lowers scans only through Triton; elsewhere aten.cumsum is an ATen fallback",
    ),
    _scan(
        "cummax",
        "torch.cummax(x, dim).values: running max along dim, shape preserved",
        ("torch.cummax({x}, dim={dim})[0]", "{x}.cummax({dim}).values"),
        Effect.NONLINEAR,
        lambda v, a: Values(v.mean + 1.5 * v.std, v.std * 0.6, v.lo, v.hi),
        constant_if=("padded", "ceil"),
        cancels=("negpart",),
    ),
    _scan(
        "logcumsumexp",
        "torch.logcumsumexp(x, dim): running logsumexp along dim, shape preserved",
        ("torch.logcumsumexp({x}, dim={dim})", "{x}.logcumsumexp({dim})"),
        Effect.NONLINEAR,
        lambda v, a: Values(v.mean + 1.0 + v.std, v.std * 0.8),
    ),
    supporting(
        "topk",
        "selection",
        "torch.topk(x, k, dim).values: the k largest values along dim (that axis becomes k)",
        functional=("torch.topk({x}, {k}, dim={dim})[0]", "{x}.topk({k}, dim={dim}).values"),
        make_args=_topk_args,
        out_shape=_topk_shape,
        effect=Effect.REDUCE,
        axes=_single_axis,
        values=lambda v, a: Values(v.mean + 1.5 * v.std, v.std * 0.6, v.lo, v.hi),
        constant_if=("padded", "ceil"),
        cancels=("negpart",),
    ),
    supporting(
        "sort",
        "selection",
        "torch.sort(x, dim, descending=False).values: values sorted along dim, shape preserved",
        functional=lambda a: (
            ("torch.sort({x}, dim={dim}, descending=True)[0]", "{x}.sort(dim={dim}, descending=True).values")
            if a.get("descending")
            else ("torch.sort({x}, dim={dim})[0]", "{x}.sort(dim={dim}).values")
        ),
        make_args=lambda rng, s: (
            None if (a := _scan_args(rng, s)) is None else {**a, "descending": rng.random() < 0.4}
        ),
        effect=Effect.LAYOUT,
        values=keep,
        axes=_single_axis,
        constant_if=("uniform",),  # sorting a uniform axis is the identity
    ),
)
