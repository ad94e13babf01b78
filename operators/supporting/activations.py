"""Activations and the softmax family."""

from __future__ import annotations

import math
import random
from typing import Any

from operators.spec import Args, Effect, OpSpec, ParamSpec, Shape, Values, ValuesFn
from operators.supporting._common import INF, keep, monotone, norm, pick_axis, scaled, supporting


def _sigmoid(t: float) -> float:
    if t == INF:
        return 1.0
    if t == -INF:
        return 0.0
    return 1.0 / (1.0 + math.exp(-max(min(t, 80.0), -80.0)))


def _softsign(t: float) -> float:
    return (1.0 if t > 0 else -1.0) if math.isinf(t) else t / (1.0 + abs(t))


def _logsigmoid(t: float) -> float:
    return -INF if t == -INF else math.log(max(_sigmoid(t), 1e-300))


def _relu_values(v: Values, a: Args) -> Values:
    return Values(max(v.mean, 0.0) + 0.4 * v.std, max(0.6 * v.std, 1e-3), 0.0, max(v.hi, 0.0))


def _choice_args(**choices: tuple) -> object:
    def make(rng: random.Random, shape: Shape) -> Args:
        return {k: rng.choice(v) for k, v in choices.items()}

    return make


def _act(name: str, forms: tuple[str, ...], hint: str, **fields) -> OpSpec:
    fields.setdefault("module", f"nn.{name}")
    fields.setdefault("attr", "act")
    return supporting(name, "activation", hint, functional=forms, **fields)


def _bounds_args(lo: tuple[float, float], hi: tuple[float, float]):
    def make(rng: random.Random, shape: Shape) -> Args:
        return {"min_val": round(rng.uniform(*lo), 2), "max_val": round(rng.uniform(*hi), 2)}

    return make


def _shrink_args(rng: random.Random, shape: Shape) -> Args:
    return {"lambd": round(rng.uniform(0.1, 0.6), 2)}


def _shrink(name: str, what: str, values: ValuesFn) -> OpSpec:
    """Hardshrink / Softshrink: the same threshold argument and forms, different value models."""
    fn = f"F.{name.lower()}"
    return _act(
        name,
        (f"{fn}({{x}}, {{lambd}})", f"{fn}({{x}}, lambd={{lambd}})"),
        f"nn.{name}(lambd=0.5): {what}",
        make_args=_shrink_args,
        value_args={"lambd": "mag"},
        positional=("lambd",),
        values=values,
        aliases=(name.lower(),),
    )


def _threshold_args(rng: random.Random, shape: Shape) -> Args:
    z = round(rng.uniform(-0.5, 0.5), 2)
    return {"threshold": z, "value": z}  # value == threshold keeps the op continuous


def _prelu_args(rng: random.Random, shape: Shape) -> Args:
    return {"num_parameters": shape[1] if rng.random() < 0.5 and shape[1] <= 512 else 1}


def _glu_args(rng: random.Random, shape: Shape) -> Args | None:
    options = [a for a in range(1, len(shape)) if shape[a] % 2 == 0 and shape[a] >= 2]
    if not options:
        return None
    axis = rng.choice(options)
    return {"dim": axis - len(shape) if rng.random() < 0.6 else axis}


def _glu_shape(shape: Shape, a: Args) -> Shape:
    axis = norm(a["dim"], len(shape))
    return tuple(s // 2 if i == axis else s for i, s in enumerate(shape))


def _clamped(v: Values, a: Args) -> Values:
    return v.bounded(a["min_val"], a["max_val"])


ACTIVATIONS: tuple[OpSpec, ...] = (
    _act(
        "ReLU",
        ("F.relu({x})", "torch.relu({x})", "{x}.relu()"),
        "nn.ReLU(): max(x, 0), shape preserved",
        values=_relu_values,
        domain="has_positive",
        facts=("floor",),
        fact_axes=lambda s, a: tuple(range(len(s))),
        cancels=("negpart",),
        aliases=("relu",),
    ),
    _act(
        "ReLU6",
        ("F.relu6({x})",),
        "nn.ReLU6(): min(max(x, 0), 6), shape preserved",
        values=lambda v, a: _relu_values(v, a).bounded(0.0, 6.0),
        domain="active:0:6",
        facts=("floor", "ceil"),
        fact_axes=lambda s, a: tuple(range(len(s))),
        cancels=("negpart",),
        aliases=("relu6",),
    ),
    _act(
        "LeakyReLU",
        ("F.leaky_relu({x}, {negative_slope})", "F.leaky_relu({x}, negative_slope={negative_slope})"),
        "nn.LeakyReLU(negative_slope=0.01): x if x > 0 else negative_slope * x",
        make_args=_choice_args(negative_slope=(0.01, 0.02, 0.05, 0.1, 0.2)),
        positional=("negative_slope",),
        values=keep,
        aliases=("leaky_relu",),
    ),
    _act(
        "PReLU",
        ("F.prelu({x}, {weight})",),
        "nn.PReLU(num_parameters=1): leaky ReLU with a learnable slope (per channel when num_parameters=C)",
        make_args=_prelu_args,
        positional=("num_parameters",),
        params=lambda a: {"weight": ParamSpec(("num_parameters",), init="const:0.25")},
        values=keep,
        learnable_affine={"negpart": None},  # the slope only acts on negative inputs
        domain="has_negative",
        derived={"num_parameters": 1},
        learnable=True,
        attr="prelu",
        aliases=("prelu",),
    ),
    _act(
        "ELU",
        ("F.elu({x}, alpha={alpha})", "F.elu({x})"),
        "nn.ELU(alpha=1.0): x if x > 0 else alpha * (exp(x) - 1)",
        make_args=_choice_args(alpha=(0.5, 1.0, 1.0, 1.5)),
        positional=("alpha",),
        values=lambda v, a: Values(v.mean, v.std, max(v.lo, -a["alpha"]), v.hi),
        aliases=("elu",),
    ),
    _act(
        "SELU",
        ("F.selu({x})", "torch.selu({x})"),
        "nn.SELU(): scaled ELU with fixed alpha/scale",
        values=lambda v, a: Values(v.mean, v.std * 1.05, max(v.lo, -1.76), v.hi),
        aliases=("selu",),
    ),
    _act(
        "CELU",
        ("F.celu({x}, alpha={alpha})",),
        "nn.CELU(alpha=1.0): max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        make_args=_choice_args(alpha=(0.5, 1.0, 2.0)),
        positional=("alpha",),
        values=lambda v, a: Values(v.mean, v.std, max(v.lo, -a["alpha"]), v.hi),
        aliases=("celu",),
    ),
    _act(
        "GELU",
        lambda a: (
            ("F.gelu({x}, approximate='tanh')",) if a.get("approximate") == "tanh" else ("F.gelu({x})",)
        ),
        "nn.GELU(approximate='none'): x * Phi(x)",
        make_args=_choice_args(approximate=("none", "none", "tanh")),
        defaults={"approximate": "none"},
        values=_relu_values,
        aliases=("gelu",),
    ),
    _act(
        "SiLU",
        ("F.silu({x})", "{x} * torch.sigmoid({x})"),
        "nn.SiLU() (Swish): x * sigmoid(x)",
        values=_relu_values,
        aliases=("silu", "Swish", "swish"),
    ),
    _act(
        "Mish",
        ("F.mish({x})", "{x} * torch.tanh(F.softplus({x}))"),
        "nn.Mish(): x * tanh(softplus(x))",
        values=_relu_values,
        aliases=("mish",),
    ),
    _act(
        "Sigmoid",
        ("torch.sigmoid({x})", "{x}.sigmoid()", "F.sigmoid({x})"),
        "nn.Sigmoid(): 1 / (1 + exp(-x)), values in (0, 1)",
        values=monotone(_sigmoid, 0.25),
        domain="active:-8:8",
        aliases=("sigmoid",),
    ),
    _act(
        "Tanh",
        ("torch.tanh({x})", "{x}.tanh()", "F.tanh({x})"),
        "nn.Tanh(): values in (-1, 1)",
        values=monotone(math.tanh),
        domain="active:-8:8",
        aliases=("tanh",),
    ),
    _act(
        "Softplus",
        ("F.softplus({x}, beta={beta}, threshold={threshold})", "F.softplus({x})"),
        "nn.Softplus(beta=1, threshold=20): log(1 + exp(beta * x)) / beta, positive",
        make_args=_choice_args(beta=(1.0, 1.0, 0.5, 2.0), threshold=(20.0, 10.0)),
        positional=("beta", "threshold"),
        values=monotone(lambda t: t if t > 30 else math.log1p(math.exp(min(t, 30.0))), 0.7),
        aliases=("softplus",),
    ),
    _act(
        "Softsign",
        ("F.softsign({x})", "{x} / (1 + {x}.abs())"),
        "nn.Softsign(): x / (1 + |x|), values in (-1, 1)",
        values=monotone(_softsign, 0.8),
        aliases=("softsign",),
    ),
    _act(
        "Hardtanh",
        ("F.hardtanh({x}, {min_val}, {max_val})", "F.hardtanh({x}, min_val={min_val}, max_val={max_val})"),
        "nn.Hardtanh(min_val=-1, max_val=1): clamp to [min_val, max_val]",
        make_args=_bounds_args((-1.5, -0.3), (0.3, 1.5)),
        value_args={"min_val": "z", "max_val": "z"},
        positional=("min_val", "max_val"),
        values=_clamped,
        facts=("floor", "ceil"),
        fact_axes=lambda s, a: tuple(range(len(s))),
        aliases=("hardtanh",),
    ),
    _act(
        "Hardsigmoid",
        ("F.hardsigmoid({x})",),
        "nn.Hardsigmoid(): relu6(x + 3) / 6, values in [0, 1]",
        values=monotone(lambda t: min(max(t / 6 + 0.5, 0.0), 1.0), 1 / 6),
        domain="active:-3:3",
        facts=("floor", "ceil"),
        fact_axes=lambda s, a: tuple(range(len(s))),
        aliases=("hardsigmoid",),
    ),
    _act(
        "Hardswish",
        ("F.hardswish({x})",),
        "nn.Hardswish(): x * relu6(x + 3) / 6",
        values=_relu_values,
        aliases=("hardswish", "HardSwish"),
    ),
    _shrink("Hardshrink", "x if |x| > lambd else 0", keep),
    _shrink("Softshrink", "x - lambd if x > lambd, x + lambd if x < -lambd, else 0", scaled(0.8)),
    _act(
        "Tanhshrink",
        ("F.tanhshrink({x})", "{x} - torch.tanh({x})"),
        "nn.Tanhshrink(): x - tanh(x)",
        values=lambda v, a: Values(0.0, max(min(v.std, 1.0) ** 3 / 3 + max(v.std - 1.0, 0.0), 1e-4)),
        domain="not_small",
        aliases=("tanhshrink",),
    ),
    _act(
        "LogSigmoid",
        ("F.logsigmoid({x})",),
        "nn.LogSigmoid(): log(sigmoid(x)), values <= 0",
        values=monotone(_logsigmoid, 0.6),
        domain="active:-30:15",
        aliases=("logsigmoid",),
    ),
    _act(
        "Threshold",
        ("F.threshold({x}, {threshold}, {value})",),
        "nn.Threshold(threshold, value): x if x > threshold else value",
        make_args=_threshold_args,
        value_args={"threshold": "z", "value": "z"},
        positional=("threshold", "value"),
        values=lambda v, a: Values(v.mean, v.std, max(v.lo, a["value"]), v.hi),
        facts=("floor",),
        fact_axes=lambda s, a: tuple(range(len(s))),
        aliases=("threshold",),
    ),
    _act(
        "RReLU",
        ("F.rrelu({x}, {lower}, {upper})",),
        "nn.RReLU(lower=1/8, upper=1/3): leaky ReLU with slope (lower+upper)/2 in eval mode",
        make_args=_choice_args(lower=(0.1, 0.125), upper=(0.25, 0.3333)),
        positional=("lower", "upper"),
        values=keep,
        aliases=("rrelu",),
    ),
    _act(
        "GLU",
        ("F.glu({x}, {dim})", "F.glu({x}, dim={dim})"),
        "nn.GLU(dim=-1): a * sigmoid(b) where a, b are the halves of x along dim (dim size halves)",
        make_args=_glu_args,
        out_shape=_glu_shape,
        positional=("dim",),
        defaults={"dim": -1},
        values=scaled(0.5),
        aliases=("glu",),
    ),
)


# ---------------------------------------------------------------------------------------------------- softmax


def _softmax_args(rng: random.Random, shape: Shape) -> Args | None:
    axis = pick_axis(rng, shape, min_size=2, max_size=4096)
    return None if axis is None else {"dim": axis}


def _dim_axes(shape: Shape, a: Args) -> tuple[int, ...]:
    return (norm(a["dim"], len(shape)),)


def _softmax_values(v: Values, a: Args) -> Values:
    return Values(0.1, 0.1, 0.0, 1.0)


def _softmax(
    name: str, hint: str, forms: tuple[str, ...], values: ValuesFn, facts: tuple[str, ...], **fields: Any
) -> OpSpec:
    """Softmax, LogSoftmax, Softmin, Softmax2d: a shift-invariant normalization along one axis."""
    fields.setdefault("make_args", _softmax_args)
    fields.setdefault("axes", _dim_axes)
    return supporting(
        name,
        "softmax",
        hint,
        module=f"nn.{name}",
        functional=forms,
        effect=Effect.NORMALIZE,
        values=values,
        facts=facts,
        constant_if=("uniform",),
        cancels=("shift",),
        **fields,
    )


SOFTMAX_FAMILY: tuple[OpSpec, ...] = (
    _softmax(
        "Softmax",
        "nn.Softmax(dim): exp(x) / sum(exp(x), dim); shape preserved, sums to 1 along dim",
        ("F.softmax({x}, dim={dim})", "torch.softmax({x}, dim={dim})", "{x}.softmax(dim={dim})"),
        _softmax_values,
        ("sum_const", "mean_const"),
        domain="calm",
        attr="softmax",
        aliases=("softmax",),
    ),
    _softmax(
        "LogSoftmax",
        "nn.LogSoftmax(dim): log(softmax(x, dim)); shape preserved, values <= 0",
        ("F.log_softmax({x}, dim={dim})", "torch.log_softmax({x}, dim={dim})", "{x}.log_softmax({dim})"),
        lambda v, a: Values(-2.5, 1.0, -INF, 0.0),
        ("lse_const",),
        domain="calm",
        attr="log_softmax",
        aliases=("log_softmax",),
    ),
    _softmax(
        "Softmin",
        "nn.Softmin(dim): softmax(-x, dim); shape preserved",
        ("F.softmin({x}, dim={dim})",),
        _softmax_values,
        ("sum_const", "mean_const"),
        domain="calm",
        attr="softmin",
        aliases=("softmin",),
    ),
    _softmax(
        "Softmax2d",
        "nn.Softmax2d(): softmax over the channel axis of (N, C, H, W) or (C, H, W)",
        ("F.softmax({x}, dim=-3)",),
        _softmax_values,
        ("sum_const", "mean_const"),
        ranks=frozenset({4}),
        make_args=lambda rng, s: {} if s[1] >= 2 else None,
        axes=lambda s, a: (len(s) - 3,),
        attr="softmax2d",
    ),
)
