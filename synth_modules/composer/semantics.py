"""Value-level rules: can an op go here without making the program degenerate, and what state does it leave?

The sandbox rejects outputs that are non-finite, constant, near-zero, independent of the input, or that ignore a
learnable parameter. These rules keep the composer from writing such programs in the first place:
- input domains (log/sqrt of positives only, exp of bounded values only, ReLU of something that can be > 0, ...);
- facts: no sum over a softmax axis, no mean/std over normalized axes, no logsumexp over a log_softmax axis;
- cancellation: a learnable shift/scale that a later normalization would cancel is switched off (bias=False,
  affine=False, a constant instead of a parameter) or the op is not placed there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from operators.shapes import identity_map, numel
from operators.spec import Args, Effect, OpSpec, Values
from synth_modules.composer.state import (
    Fact,
    Pending,
    TensorState,
    new_key,
    remap_facts,
    remap_pending,
)

BOUNDED_MAX = 5.0  # exp/pow inputs stay below this: larger activations starve other parameters of gradient
CALM_STD = 10.0  # softmax inputs spread wider than this are one-hot everywhere (no gradient)
POSITIVE_AWAY = 1e-3  # 1/x and 1/sqrt(x) need inputs at least this far from zero
_REDUCE_LIKE = {Effect.REDUCE, Effect.REDUCE_LINEAR}
_FRESH = {Effect.MIX, Effect.BLOCK}
_STRIDED = {"permute", "transpose", "narrow", "chunk", "expand"}
STICKY = {
    "uniform",
    "padded",
    "floor",
    "ceil",
    "split",
}  # survive element-wise maps and pooling: f(const) is const
_ORDER_PRESERVING = {"reshape", "view", "Flatten", "Unflatten", "unsqueeze", "squeeze", "Identity"}
_ELEMENTWISE = {"activation", "math", "clamp", "arithmetic", "dropout"}
_DECREASING = {"neg", "reciprocal", "rsqrt"}
_NON_MONOTONE = {"abs", "square", "pow", "sin", "cos"}
_INTERSECTING = {"padded", "floor", "ceil", "split"}
# Ops after which the value model is only a rough guess; ops that place bounds inside the data (clamp,
# Hardtanh, shrinks) then wait for a normalization.
_LOOSE_MAKERS = {
    "Bilinear", "exp", "expm1", "pow", "square", "reciprocal", "rsqrt", "prod", "cumsum", "logcumsumexp",
    "sum", "norm", "var", "std", "PairwiseDistance", "LPPool1d", "LPPool2d", "LPPool3d", "addcmul",
}  # fmt: skip  # constant as soon as the op touches one of the fact's axes


@dataclass
class OperandInfo:
    """What a binary op's second input is: a constant, a learnable tensor, another activation, or x itself."""

    kind: str  # scalar | param | tensor | self
    values: Values
    state: TensorState | None = None  # for "tensor"
    axes: frozenset[int] = frozenset()  # axes a learnable operand varies along


@dataclass
class Check:
    ok: bool
    reason: str = ""
    neutralize: list[Pending] = field(default_factory=list)


def op_axes(spec: OpSpec, shape: tuple[int, ...], args: Args) -> frozenset[int]:
    return frozenset(spec.axes(shape, args)) if spec.axes is not None else frozenset()


def axis_map(spec: OpSpec, shape: tuple[int, ...], args: Args) -> list[tuple[int, ...]]:
    return spec.axis_map(shape, args) if spec.axis_map is not None else identity_map(shape)


def prepare_args(spec: OpSpec, state: TensorState, raw: Args) -> Args:
    """Turn data-relative arguments (clamp bounds in units of the data) into numbers; add `_count`."""
    args = dict(raw)
    v = state.values
    for name, unit in spec.value_args.items():
        if name not in args:
            continue
        z = float(args[name])
        value = abs(z) * max(v.std, 1e-3) if unit == "mag" else v.mean + z * max(v.std, 1e-3)
        args[name] = _round(value)
    if spec.axes is not None:
        axes = spec.axes(state.shape, args)
        args["_count"] = numel([state.shape[a] for a in axes]) if axes else 1
    args["_in_shape"] = state.shape
    return args


def _round(value: float) -> float:
    if value == 0:
        return 0.0
    digits = 3 - math.floor(math.log10(abs(value)))
    return round(value, max(digits, 1))


def domain_ok(domain: str | None, v: Values, shape: tuple[int, ...] = ()) -> bool:
    if domain is None:
        return True
    if domain == "attention_calm":
        return v.rms**2 * math.sqrt(shape[-1] if shape else 1) <= 16.0
    if domain == "positive":
        return v.lo > 0
    if domain == "nonnegative":
        return v.lo >= 0
    if domain == "bounded":
        return v.typical_max <= BOUNDED_MAX
    if domain == "has_positive":
        return v.hi > 0 and v.mean + 2 * v.std > 0
    if domain == "has_negative":
        return v.lo < 0 and v.mean - 2 * v.std < 0
    if domain == "not_small":
        return v.std >= 0.2
    if domain == "no_zero_floor":
        return v.lo != 0.0
    if domain == "unit_scale":
        return 0.5 <= v.rms <= 2.0 and v.typical_max <= BOUNDED_MAX
    if domain == "positive_away":
        return v.lo >= POSITIVE_AWAY
    if domain == "calm":  # neither one-hot everywhere (no gradient) nor flat (gradients ~1/n)
        return 0.05 <= v.std <= CALM_STD and v.typical_max < 60
    if domain.startswith("active:"):
        lo, hi = (float(t) for t in domain.split(":")[1:])
        return max(v.mean - 2 * v.std, v.lo) < hi and min(v.mean + 2 * v.std, v.hi) > lo
    raise ValueError(f"unknown domain {domain}")


def check(spec: OpSpec, state: TensorState, args: Args, neutralized: set[tuple[int, str]]) -> Check:
    """Whether `spec` may consume `state` with `args` (args already prepared)."""
    if not domain_ok(spec.domain, state.values, state.shape):
        return Check(False, f"domain:{spec.domain}")
    if spec.value_args and state.values.loose:
        return Check(False, "domain:tight")
    axes = op_axes(spec, state.shape, args)
    if spec.constant_if:
        reason = constant_reason(spec.constant_if, state.facts, axes)
        if reason:
            return Check(False, f"constant:{reason}")
    to_switch: list[Pending] = []
    if spec.cancels:
        for p in state.pending:
            if (p.node, p.kind) in neutralized or p.kind not in spec.cancels or p.axes & axes:
                continue
            if p.switch is None:
                return Check(False, f"cancels:{p.kind}")
            to_switch.append(p)
    return Check(True, neutralize=to_switch)


def constant_reason(kinds: tuple[str, ...], facts: frozenset[Fact], axes: frozenset[int]) -> str | None:
    """Which fact (if any) makes an op over `axes` produce a constant.

    uniform: the op normalizes only along axes where all values are equal (softmax -> 1/n, LayerNorm -> 0);
    padded: a max-like reduction over a padded axis can return the pad value everywhere;
    others: the op reduces over a superset of the fact's axes (sum of a softmax, mean of a LayerNorm, ...).
    """
    if not axes:
        return None
    uniform = frozenset().union(*(f.axes for f in facts if f.kind == "uniform"))
    if "uniform" in kinds and axes <= uniform:
        return "uniform"
    for fact in facts:
        if fact.kind not in kinds or fact.kind == "uniform":
            continue
        if fact.kind in _INTERSECTING and fact.axes & axes:
            return fact.kind
        if fact.kind not in _INTERSECTING and fact.axes <= axes:
            return fact.kind
    return None


def _clip_facts(spec: OpSpec, facts: frozenset[Fact], operand: OperandInfo | None) -> frozenset[Fact]:
    """floor/ceil facts through an element-wise map: kept, swapped (decreasing) or both (non-monotone)."""
    flip = spec.name in _DECREASING
    if (
        operand is not None
        and operand.kind == "scalar"
        and operand.values.mean < 0
        and spec.name in {"mul", "div"}
    ):
        flip = True
    both = spec.name in _NON_MONOTONE or (
        operand is not None and operand.kind == "param" and operand.values.lo < 0
    )
    out = set()
    for f in facts:
        if f.kind not in {"floor", "ceil"}:
            out.add(f)
        elif both:
            out |= {Fact("floor", f.axes), Fact("ceil", f.axes)}
        elif flip:
            out.add(Fact("ceil" if f.kind == "floor" else "floor", f.axes))
        else:
            out.add(f)
    return frozenset(out)


def _own_pending(spec: OpSpec, shape: tuple[int, ...], args: Args, node: int) -> list[Pending]:
    out = []
    axes = frozenset(spec.affine_axes(shape, args)) if spec.affine_axes is not None else frozenset()
    for kind, switch in spec.learnable_affine.items():
        if kind == "negpart":
            out.append(Pending(kind, frozenset(), node, None))
            continue
        if switch is not None and args.get(switch) is False:
            continue
        if spec.name.startswith("InstanceNorm") and not args.get("affine"):
            continue
        out.append(Pending(kind, axes, node, switch))
    return out


def _default_values(spec: OpSpec, v: Values) -> Values:
    if spec.effect in _FRESH:
        return Values(0.0, max(v.rms * 0.6, 0.05))
    if spec.effect == Effect.NORMALIZE:
        return Values(0.0, 1.0)
    return v


def transfer(
    spec: OpSpec,
    state: TensorState,
    args: Args,
    out_shape: tuple[int, ...],
    *,
    node: int,
    operand: OperandInfo | None = None,
) -> TensorState:
    """The state of the op's output."""
    amap = axis_map(spec, state.shape, args)
    axes = op_axes(spec, state.shape, args)
    effect = spec.effect
    facts, pending = state.facts, state.pending
    merged = operand is not None and operand.kind == "tensor"
    if merged and operand.state is not None:
        pending = pending + operand.state.pending
    own = _own_pending(spec, out_shape, args, node)

    sticky = frozenset(f for f in facts if f.kind in STICKY and not f.axes & axes)
    if merged and spec.name in {"add", "sub"} and operand is not None and operand.state is not None:
        # A residual sum keeps both sides' reductions constant: mean(LayerNorm(x) + x) leaves LayerNorm dead.
        facts = frozenset(f for f in facts | operand.state.facts if f.kind not in _INTERSECTING)
    elif merged:
        facts = frozenset()
    elif effect in {Effect.BLOCK, Effect.NORMALIZE, Effect.POOL}:
        facts = sticky
    elif effect == Effect.NONLINEAR:
        facts = sticky | frozenset(
            Fact(spec.fact_map[f.kind], f.axes) for f in facts if f.kind in spec.fact_map
        )
        facts = _clip_facts(spec, facts, operand)
    elif effect == Effect.REDUCE_LINEAR or (effect == Effect.AFFINE and "sum_const" in spec.constant_if):
        # sum/mean (and average pools collapsing axes): a sum over part of a constant-sum axis set leaves
        # the rest constant-sum
        kept = set()
        for f in facts:
            if not f.axes & axes:
                kept.add(f)
            elif f.kind in {"sum_const", "mean_const"} and not f.axes <= axes:
                kept.add(Fact(f.kind, f.axes - axes))
        facts = frozenset(kept)
    else:  # IDENTITY, LAYOUT, AFFINE, MIX, REDUCE: facts away from the touched axes survive
        touched = set(axes)
        if operand is not None and operand.kind == "param":
            touched |= operand.axes
        for p in own:
            touched |= p.axes
        facts = frozenset(f for f in facts if not f.axes & touched or f.kind in _INTERSECTING)
        if effect == Effect.MIX:
            facts = frozenset(f for f in facts if f.kind not in _INTERSECTING)
        elif effect == Effect.AFFINE:
            facts = _clip_facts(spec, facts, operand)
    facts = remap_facts(facts, amap)
    kinds = spec.fact_kinds(args)
    if kinds:
        where = frozenset(spec.fact_axes(state.shape, args)) if spec.fact_axes is not None else axes
        if where:
            facts = facts | frozenset(Fact(kind, where) for kind in kinds)

    negpart = tuple(p for p in pending if p.kind == "negpart")
    if effect in {Effect.NONLINEAR, Effect.NORMALIZE, Effect.BLOCK}:
        pending = negpart if effect == Effect.NONLINEAR else ()
    elif effect == Effect.MIX:
        pending = tuple(
            Pending(p.kind, p.axes | axes, p.node, p.switch) if p.kind == "shift" else p
            for p in pending
            if p.kind == "shift" or not p.axes & axes
        )
    elif effect in _REDUCE_LIKE:
        pending = tuple(p for p in pending if not p.axes & axes and p.kind not in spec.cancels)
        if effect == Effect.REDUCE_LINEAR or "negpart" not in spec.cancels:
            pending = tuple(p for p in pending if p.kind != "negpart")
    if operand is not None and operand.kind == "param" and spec.operand is not None:
        learn = spec.operand.learnable
        switch = "_operand" if "scalar" in spec.operand.kinds else None
        if (learn in {"shift", "scale"} and effect == Effect.AFFINE) or learn == "negpart":
            pending = (
                *pending,
                Pending(learn, operand.axes if learn != "negpart" else frozenset(), node, switch),
            )
    pending = remap_pending(pending, amap) + tuple(own)

    values = (
        spec.values(state.values, args) if spec.values is not None else _default_values(spec, state.values)
    )
    gram = args.get("mode") == "gram" or args.get("equation") == "bij,bkj->bik"
    loose = values.loose or spec.name in _LOOSE_MAKERS or gram
    loose = loose or (state.values.loose and effect != Effect.NORMALIZE)
    if merged and operand is not None:
        loose = loose or operand.values.loose
    values = replace(values, loose=loose)
    same_shape = tuple(out_shape) == state.shape
    if effect == Effect.IDENTITY or spec.name in _ORDER_PRESERVING:
        key, affine_key, elementwise_key = state.key, state.affine_key, state.elementwise_key
    elif effect == Effect.AFFINE and not merged and same_shape and spec.category in _ELEMENTWISE | {"norm"}:
        key, affine_key, elementwise_key = new_key(), state.affine_key, state.elementwise_key
    else:
        key = new_key()
        affine_key = key
        elementwise = effect in {Effect.NONLINEAR, Effect.AFFINE} and spec.category in _ELEMENTWISE
        elementwise_key = state.elementwise_key if (elementwise and same_shape and not merged) else key
    if effect in _FRESH or merged or spec.category in {"padding"}:
        contiguous = True
    else:
        contiguous = state.contiguous and spec.name not in _STRIDED
    return TensorState(
        shape=tuple(out_shape),
        values=values,
        dtype="float",
        facts=facts,
        pending=pending,
        key=key,
        affine_key=affine_key,
        elementwise_key=elementwise_key,
        contiguous=contiguous,
        sources=_sources(spec, state, args, out_shape, amap, axes, node),
    )


def _sources(
    spec: OpSpec,
    state: TensorState,
    args: Args,
    out_shape: tuple[int, ...],
    amap: list[tuple[int, ...]],
    axes: frozenset[int],
    node: int,
) -> tuple[tuple[int, tuple[int, str]], ...]:
    out: dict[int, tuple[int, str]] = {}
    for axis, src in state.sources:
        if axis in axes and spec.effect == Effect.MIX:
            continue
        targets = amap[axis] if axis < len(amap) else ()
        if len(targets) == 1 and targets[0] < len(out_shape) and out_shape[targets[0]] == state.shape[axis]:
            out[targets[0]] = src
    for axis, name in spec.out_dims.items():
        if name in args:
            out[axis % len(out_shape)] = (node, name)
    return tuple(sorted(out.items()))
