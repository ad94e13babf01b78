"""Element-wise arithmetic: binary ops (with a constant, a learnable tensor or another activation), unary math
and clamps.

Binary ops see their operand's value model in `args["_y"]` (set by the composer) so value estimates stay sane.
"""

from __future__ import annotations

import math
import random
from typing import Any

from operators.spec import Args, Effect, Operand, OpSpec, Shape, Values, ValuesFn
from operators.supporting._common import INF, keep, monotone, supporting

_ADD = Operand(kinds=("scalar", "param", "tensor"), scalar_range=(0.1, 2.0), learnable="shift")
_MUL = Operand(
    kinds=("scalar", "param", "tensor"), scalar_range=(0.25, 3.0), param_init="ones_jitter", learnable="scale"
)
_DIV = Operand(kinds=("scalar", "param"), scalar_range=(0.5, 4.0), param_init="positive", learnable="scale")
_PAIR = Operand(kinds=("param", "tensor"), param_init="centered", learnable="other", overlap=True)
_BLEND = Operand(kinds=("param", "tensor"), param_init="unit", learnable="shift")
_Range = tuple[float, float] | None  # where a clamp bound is drawn from (None: that side is open)


def _y(a: Args) -> Values:
    return a.get("_y", Values(0.0, 0.0, 0.0, 0.0))


def _sum_values(sign: float):
    def values(v: Values, a: Args) -> Values:
        y = _y(a)
        return Values(v.mean + sign * y.mean, max(math.hypot(v.std, y.std), 1e-3))

    return values


def _product_bounds(a_lo: float, a_hi: float, b_lo: float, b_hi: float) -> tuple[float, float]:
    products = []
    for p in (a_lo, a_hi):
        for q in (b_lo, b_hi):
            products.append(0.0 if (p == 0 or q == 0) else p * q)
    return min(products), max(products)


def _mul_values(v: Values, a: Args) -> Values:
    y = _y(a)
    mean = v.mean * y.mean
    std = math.sqrt((v.std * y.rms) ** 2 + (y.std * v.rms) ** 2)
    lo, hi = _product_bounds(v.lo, v.hi, y.lo, y.hi)
    return Values(mean, max(std, 1e-3), lo, hi)


def _div_values(v: Values, a: Args) -> Values:
    y = _y(a)
    if y.lo > 0 or y.hi < 0:
        inv_lo, inv_hi = sorted((1.0 / y.hi if y.hi else INF, 1.0 / y.lo if y.lo else INF))
    else:
        inv_lo, inv_hi = -4.0, 4.0
    lo, hi = _product_bounds(v.lo, v.hi, inv_lo, inv_hi)
    inv = 1.0 / max(abs(y.mean), 0.25)
    return Values(v.mean * inv, max(v.std * inv, 1e-3), lo, hi)


def _exp_values(v: Values, a: Args) -> Values:
    top = min(v.typical_max, 80.0)
    mean = math.exp(min(v.mean + v.std**2 / 2, 80.0))
    return Values(mean, max(mean * min(v.std, 3.0), 1e-3), 1e-12, math.exp(top))


def _log_values(v: Values, a: Args) -> Values:
    base = max(v.mean, 1e-3)
    return Values(
        math.log(base), max(min(v.std / base, 3.0), 0.1), -INF, math.log(max(v.typical_max, 1e-3)) + 1
    )


def _power(p: float):
    def values(v: Values, a: Args) -> Values:
        exponent = a.get("exponent", p)
        top = v.typical_max**exponent
        return Values(v.rms**exponent, max(top / 5, 1e-3), 0.0 if exponent % 2 == 0 else -INF, INF)

    return values


def _pos_args(rng: random.Random, shape: Shape) -> Args:
    return {}


def _binary(name: str, forms: tuple[str, ...], hint: str, operand: Operand, **fields) -> OpSpec:
    return supporting(name, "arithmetic", hint, functional=forms, operand=operand, **fields)


def _pair_extremum(name: str, short: str, values: ValuesFn) -> OpSpec:
    """torch.maximum / torch.minimum: the same element-wise pair op, mirrored."""
    return _binary(
        name,
        (f"torch.{name}({{x}}, {{y}})", f"torch.{short}({{x}}, {{y}})"),
        f"torch.{name}(x, y): element-wise {short} of two tensors (broadcast)",
        _PAIR,
        values=values,
    )


def _blend(name: str, forms: tuple[str, ...], hint: str, key: str, top: float, values: ValuesFn) -> OpSpec:
    """lerp and addcmul: x plus a weighted term of the operand, the weight `key` drawn from [0.1, top]."""
    return _binary(
        name,
        forms,
        hint,
        _BLEND,
        make_args=lambda rng, s: {key: round(rng.uniform(0.1, top), 2)},
        effect=Effect.AFFINE,
        values=values,
    )


def _unary(name: str, forms: tuple[str, ...], hint: str, **fields) -> OpSpec:
    fields.setdefault("effect", Effect.NONLINEAR)
    return supporting(name, "math", hint, functional=forms, **fields)


def _clamp_args(lo: _Range, hi: _Range):
    def make(rng: random.Random, shape: Shape) -> Args:
        args: Args = {}
        if lo:
            args["min_value"] = round(rng.uniform(*lo), 2)
        if hi:
            args["max_value"] = round(rng.uniform(*hi), 2)
        return args

    return make


def _clamp_values(v: Values, a: Args) -> Values:
    return v.bounded(a.get("min_value", -INF), a.get("max_value", INF))


def _clamp(name: str, hint: str, forms: tuple[str, ...], lo: _Range, hi: _Range, **fields: Any) -> OpSpec:
    """clamp, clamp_min, clamp_max: bounds drawn from `lo` / `hi` (None: that side is left open)."""
    value_args: dict[str, str] = {}
    facts: tuple[str, ...] = ()
    if lo:
        value_args["min_value"] = "z"
        facts += ("floor",)
    if hi:
        value_args["max_value"] = "z"
        facts += ("ceil",)
    return supporting(
        name,
        "clamp",
        hint,
        functional=forms,
        make_args=_clamp_args(lo, hi),
        value_args=value_args,
        values=_clamp_values,
        facts=facts,
        fact_axes=lambda s, a: tuple(range(len(s))),
        **fields,
    )


BINARY: tuple[OpSpec, ...] = (
    _binary(
        "add",
        ("{x} + {y}", "torch.add({x}, {y})", "{x}.add({y})"),
        "x + y (y: a constant, a learnable bias broadcast over x, or a residual of the same shape)",
        _ADD,
        effect=Effect.AFFINE,
        values=_sum_values(1.0),
        aliases=("Add", "BiasAdd", "ResidualAdd", "Sum", "plus"),
    ),
    _binary(
        "sub",
        ("{x} - {y}", "torch.sub({x}, {y})", "{x}.sub({y})"),
        "x - y (y: a constant, a learnable tensor broadcast over x, or another activation)",
        _ADD,
        effect=Effect.AFFINE,
        values=_sum_values(-1.0),
        aliases=("Subtract", "subtract"),
    ),
    _binary(
        "mul",
        ("{x} * {y}", "torch.mul({x}, {y})", "{x}.mul({y})"),
        "x * y (y: a scale factor, a learnable scale broadcast over x, or another activation)",
        _MUL,
        effect=Effect.AFFINE,
        values=_mul_values,
        aliases=("Multiply", "multiply", "Scale", "Scaling"),
    ),
    _binary(
        "div",
        ("{x} / {y}", "torch.div({x}, {y})", "{x}.div({y})"),
        "x / y (y: a non-zero constant or a positive learnable tensor)",
        _DIV,
        effect=Effect.AFFINE,
        values=_div_values,
        aliases=("Divide", "divide"),
    ),
    _pair_extremum(
        "maximum", "max", lambda v, a: Values(max(v.mean, _y(a).mean), v.std, max(v.lo, _y(a).lo), INF)
    ),
    _pair_extremum(
        "minimum", "min", lambda v, a: Values(min(v.mean, _y(a).mean), v.std, -INF, min(v.hi, _y(a).hi))
    ),
    _blend(
        "lerp",
        ("torch.lerp({x}, {y}, {alpha})", "{x}.lerp({y}, {alpha})"),
        "torch.lerp(x, y, weight): x + weight * (y - x)",
        "alpha",
        0.9,
        lambda v, a: Values(v.mean, max(v.std, _y(a).std) * 0.7),
    ),
    _blend(
        "addcmul",
        ("torch.addcmul({x}, {y}, {y}, value={value})", "{x}.addcmul({y}, {y}, value={value})"),
        "torch.addcmul(x, t1, t2, value): x + value * t1 * t2",
        "value",
        1.0,
        lambda v, a: Values(v.mean + a["value"] * _y(a).rms ** 2, v.std + a["value"] * _y(a).rms ** 2),
    ),
    _binary(
        "logaddexp",
        ("torch.logaddexp({x}, {y})", "{x}.logaddexp({y})"),
        "torch.logaddexp(x, y): log(exp(x) + exp(y)), numerically stable",
        _PAIR,
        values=lambda v, a: Values(max(v.mean, _y(a).mean) + 0.5, v.std),
    ),
    _binary(
        "where",
        ("torch.where({x} > 0, {x}, {x} * {y})",),
        "torch.where(cond, a, b): element-wise select, e.g. where(x > 0, x, x * slope)",
        Operand(
            kinds=("scalar", "param"),
            scalar_range=(0.05, 0.5),
            signed=False,
            param_init="positive",
            learnable="negpart",
        ),
        values=keep,
        domain="has_negative",
    ),
)

UNARY: tuple[OpSpec, ...] = (
    _unary(
        "neg",
        ("-{x}", "torch.neg({x})", "{x}.neg()"),
        "-x",
        effect=Effect.AFFINE,
        values=lambda v, a: Values(-v.mean, v.std, -v.hi, -v.lo),
        aliases=("negative",),
    ),
    _unary(
        "abs",
        ("torch.abs({x})", "{x}.abs()"),
        "|x|",
        values=lambda v, a: Values(
            abs(v.mean) + 0.6 * v.std, max(0.6 * v.std, 1e-3), 0.0, max(abs(v.lo), abs(v.hi))
        ),
    ),
    _unary(
        "square",
        ("torch.square({x})", "{x} * {x}", "{x} ** 2"),
        "x ** 2",
        values=_power(2),
        domain="bounded",
        fact_map={"var_const": "sum_const"},
    ),
    _unary(
        "pow",
        ("torch.pow({x}, {exponent})", "{x} ** {exponent}", "{x}.pow({exponent})"),
        "torch.pow(x, exponent) with a small integer exponent",
        make_args=lambda rng, s: {"exponent": rng.choice((2, 3))},
        values=_power(2),
        domain="bounded",
        fact_map={"var_const": "sum_const"},
    ),
    _unary(
        "sqrt",
        ("torch.sqrt({x})", "{x}.sqrt()"),
        "sqrt(x), needs x > 0",
        values=lambda v, a: Values(
            math.sqrt(max(v.mean, 1e-6)), max(v.std / (2 * math.sqrt(max(v.mean, 1e-2))), 1e-3), 0.0, INF
        ),
        domain="positive",
    ),
    _unary(
        "rsqrt",
        ("torch.rsqrt({x})", "{x}.rsqrt()"),
        "1 / sqrt(x), needs x > 0",
        values=lambda v, a: Values(
            1 / math.sqrt(max(v.mean, 1e-2)),
            max(v.std, 0.1),
            1 / math.sqrt(max(v.hi, 1e-6)),
            1 / math.sqrt(max(v.lo, 1e-6)),
        ),
        domain="positive_away",
    ),
    _unary(
        "exp",
        ("torch.exp({x})", "{x}.exp()"),
        "exp(x), keep x bounded",
        values=_exp_values,
        domain="bounded",
        fact_map={"lse_const": "sum_const"},
    ),
    _unary(
        "expm1",
        ("torch.expm1({x})", "{x}.expm1()"),
        "exp(x) - 1, keep x bounded",
        values=lambda v, a: Values(_exp_values(v, a).mean - 1, _exp_values(v, a).std, -1.0, INF),
        domain="bounded",
    ),
    _unary(
        "log",
        ("torch.log({x})", "{x}.log()"),
        "log(x), needs x > 0",
        values=_log_values,
        domain="positive",
    ),
    _unary(
        "log1p",
        ("torch.log1p({x})", "{x}.log1p()"),
        "log(1 + x), needs x > -1",
        values=lambda v, a: _log_values(Values(v.mean + 1, v.std, v.lo + 1, v.hi + 1), a),
        domain="nonnegative",
    ),
    _unary(
        "reciprocal",
        ("torch.reciprocal({x})", "{x}.reciprocal()", "1.0 / {x}"),
        "1 / x, needs x away from 0",
        values=lambda v, a: Values(
            1 / max(v.mean, 0.1),
            max(v.std / max(v.mean, 0.1) ** 2, 0.1),
            1 / max(v.hi, 1e-6),
            1 / max(v.lo, 1e-6),
        ),
        domain="positive_away",
    ),
    _unary(
        "sin",
        ("torch.sin({x})", "{x}.sin()"),
        "sin(x)",
        values=lambda v, a: monotone(math.sin)(v, a) if v.typical_max < 1.5 else Values(0.0, 0.7, -1.0, 1.0),
        domain="bounded",
    ),
    _unary(
        "cos",
        ("torch.cos({x})", "{x}.cos()"),
        "cos(x)",
        values=lambda v, a: Values(
            math.cos(min(v.rms, 3.0)), 0.3, math.cos(min(v.typical_max, math.pi)), 1.0
        ),
        domain="bounded",
    ),
    _unary(
        "atan",
        ("torch.atan({x})", "{x}.atan()", "torch.arctan({x})"),
        "atan(x), values in (-pi/2, pi/2)",
        values=monotone(math.atan),
    ),
    _unary(
        "erf",
        ("torch.erf({x})", "{x}.erf()", "torch.special.erf({x})"),
        "erf(x), values in (-1, 1)",
        values=monotone(lambda t: math.erf(t) if not math.isinf(t) else math.copysign(1.0, t)),
    ),
)

CLAMPS: tuple[OpSpec, ...] = (
    _clamp(
        "clamp",
        "torch.clamp(x, min, max): clamp into [min, max]",
        (
            "torch.clamp({x}, min={min_value}, max={max_value})",
            "{x}.clamp({min_value}, {max_value})",
            "torch.clip({x}, {min_value}, {max_value})",
        ),
        (-1.5, -0.2),
        (0.2, 1.5),
        aliases=("Clamp", "clip"),
    ),
    _clamp(
        "clamp_min",
        "torch.clamp_min(x, min) / x.clamp(min=...): max(x, min)",
        (
            "torch.clamp_min({x}, {min_value})",
            "{x}.clamp(min={min_value})",
            "torch.clamp({x}, min={min_value})",
        ),
        (-1.0, 0.5),
        None,
    ),
    _clamp(
        "clamp_max",
        "torch.clamp_max(x, max) / x.clamp(max=...): min(x, max)",
        (
            "torch.clamp_max({x}, {max_value})",
            "{x}.clamp(max={max_value})",
            "torch.clamp({x}, max={max_value})",
        ),
        None,
        (-0.5, 1.0),
    ),
)

ARITHMETIC: tuple[OpSpec, ...] = (*BINARY, *UNARY, *CLAMPS)
