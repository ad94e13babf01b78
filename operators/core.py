"""Core ops: the main compute of a program (linear layers, convolutions, matrix products)."""

from __future__ import annotations

import random
from typing import Any

from operators.shapes import (
    MAX_FLOPS,
    MAX_NUMEL,
    MAX_PARAMS,
    as_tuple,
    conv_out,
    conv_t_out,
    divisors,
    fits,
    last_axis,
    numel,
)
from operators.spec import Args, Effect, Kind, Operand, OpSpec, ParamSpec, Shape, Values, fallback

_FEATURES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
_CHANNELS = (4, 6, 8, 12, 16, 24, 32, 48, 64)


def _mix_values(gain: float) -> object:
    """Values after a linear layer with default (kaiming-uniform) init: zero-mean, rms scaled by `gain`."""

    def values(v: Values, args: Args) -> Values:
        return Values(0.0, max(v.rms * gain, 0.05))

    return values


def _maybe_no_bias(rng: random.Random, args: Args) -> Args:
    """Turn the bias off in 15% of the layers (Linear, Bilinear, convs), as real code sometimes does."""
    if rng.random() < 0.15:
        args["bias"] = False
    return args


# ---------------------------------------------------------------------------------------------------- linear


def _linear_args(rng: random.Random, shape: Shape) -> Args | None:
    fin = shape[-1]
    if not 2 <= fin <= 4096:  # from one feature the output is a*w + b: rank one along the features
        return None
    rows = numel(shape[:-1])
    ok = [
        f
        for f in _FEATURES
        if rows * f <= MAX_NUMEL and fin * f <= MAX_PARAMS and 2 * rows * fin * f <= MAX_FLOPS
    ]
    if not ok:
        return None
    return _maybe_no_bias(rng, {"in_features": fin, "out_features": rng.choice(ok)})


def _linear_params(args: Args) -> dict[str, ParamSpec]:
    return {
        "weight": ParamSpec(("out_features", "in_features"), fan_in="in_features"),
        "bias": ParamSpec(("out_features",), init="small", optional_arg="bias"),
    }


def _last_axis_op(name: str, category: str, hint: str, **fields: Any) -> OpSpec:
    """Linear, Bilinear, matmul, mm, addmm, bmm: core ops that mix the last axis into `out_features`."""
    return OpSpec(
        name=name,
        kind=Kind.CORE,
        category=category,
        prompt_hint=hint,
        effect=Effect.MIX,
        axes=lambda s, a: last_axis(s),
        out_dims={-1: "out_features"},
        **fields,
    )


def _linear_layer(name: str, hint: str, **fields: Any) -> OpSpec:
    """nn.Linear and nn.Bilinear: learnable layers (*, in) -> (*, out_features) with an optional bias."""
    return _last_axis_op(
        name,
        "linear",
        hint,
        out_shape=lambda s, a: (*s[:-1], a["out_features"]),
        module=f"nn.{name}",
        defaults={"bias": True},
        learnable_affine={"shift": "bias"},
        affine_axes=lambda s, a: last_axis(s),
        learnable=True,
        **fields,
    )


LINEAR = _linear_layer(
    "Linear",
    "nn.Linear(in_features, out_features): (*, in_features) -> (*, out_features)",
    ranks=frozenset({2, 3, 4}),
    make_args=_linear_args,
    positional=("in_features", "out_features"),
    functional=("F.linear({x}, {weight}, {bias})",),
    params=_linear_params,
    values=_mix_values(1.0),
    derived={"in_features": -1},
    attr="fc",
    aliases=("linear", "Gemm", "gemm"),
)


def _bilinear_args(rng: random.Random, shape: Shape) -> Args | None:
    fin = shape[-1]
    if not 2 <= fin <= 96:
        return None
    rows = numel(shape[:-1])
    ok = [f for f in _FEATURES if f <= 64 and rows * f <= MAX_NUMEL and fin * fin * f <= MAX_PARAMS]
    ok = [f for f in ok if 2 * rows * fin * fin * f <= MAX_FLOPS]
    if not ok:
        return None
    return _maybe_no_bias(rng, {"in1_features": fin, "in2_features": fin, "out_features": rng.choice(ok)})


BILINEAR = _linear_layer(
    "Bilinear",
    "nn.Bilinear(in1_features, in2_features, out_features): x1 (*, in1), x2 (*, in2) -> (*, out_features)",
    ranks=frozenset({2, 3}),
    make_args=_bilinear_args,
    positional=("in1_features", "in2_features", "out_features"),
    call="{m}({x}, {y})",
    functional=("F.bilinear({x}, {y}, {weight}, {bias})",),
    params=lambda a: {
        "weight": ParamSpec(("out_features", "in1_features", "in2_features"), fan_in="in1_features"),
        "bias": ParamSpec(("out_features",), init="small", optional_arg="bias"),
    },
    operand=Operand(kinds=("self", "tensor")),
    values=lambda v, a: Values(0.0, max(v.rms**2 * (a["in1_features"] / 3) ** 0.5, 0.05)),  # quadratic,
    derived={"in1_features": -1, "in2_features": -1},
    attr="bilinear",
    inductor=fallback(
        "aten._trilinear (the bilinear form) has no Inductor lowering: an ATen fallback kernel"
    ),
)

# ---------------------------------------------------------------------------------------------- convolutions


def _conv_args(nd: int, transpose: bool):
    def make(rng: random.Random, shape: Shape) -> Args | None:
        if len(shape) != nd + 2:
            return None
        cin, spatial = shape[1], shape[2:]
        if cin > 256:
            return None
        for _ in range(12):
            args = _conv_try(rng, nd, transpose, shape, cin, spatial)
            if args is not None:
                return args
        return None

    return make


def _conv_try(
    rng: random.Random, nd: int, transpose: bool, shape: Shape, cin: int, spatial: tuple[int, ...]
) -> Args | None:
    kernels = (1, 2, 3, 3) if nd == 3 else (1, 3, 3, 3, 5) if nd == 2 else (1, 3, 3, 5, 7)
    k = rng.choice(kernels)
    kernel: int | tuple[int, ...] = k
    if nd == 2 and not transpose and rng.random() < 0.15:
        kernel = (k, rng.choice((1, 3, 5)))
    ks = as_tuple(kernel, nd)
    if cin == 1 and max(ks) == 1:
        return None  # a 1x1 conv of one channel is rank one (a * w + b): normalizing it cancels the input
    dilation = 2 if (not transpose and rng.random() < 0.12) else 1
    padding: int | str
    if transpose:
        stride = rng.choice((1, 2, 2))
        padding = rng.randint(0, max(ks) // 2) if min(ks) > 1 else 0
        padding = min(padding, min(ks) - 1)
        output_padding = rng.randint(0, stride - 1) if stride > 1 else 0
        out_sp = tuple(
            conv_t_out(size, kk, stride, padding, output_padding, dilation)
            for size, kk in zip(spatial, ks, strict=True)
        )
    else:
        stride = rng.choice((1, 1, 1, 2))
        padding = rng.choice((0, (min(ks) // 2) * dilation))
        output_padding = 0
        if stride == 1 and rng.random() < 0.1:
            padding = "same"
            out_sp = spatial
        else:
            out_sp = tuple(
                conv_out(size, kk, stride, int(padding), dilation)
                for size, kk in zip(spatial, ks, strict=True)
            )
    if min(out_sp) < 2:
        return None
    groups = 1
    if rng.random() < 0.2:
        options = [g for g in divisors(cin) if g > 1 and g <= 16]
        if options:
            groups = rng.choice(options)
    outs = [c for c in _CHANNELS if c % groups == 0] + ([cin] if groups == cin else [])
    per_out = (cin // groups) * numel(ks)
    rows = shape[0] * numel(out_sp)
    outs = [c for c in outs if rows * c <= MAX_NUMEL and 2 * rows * c * per_out <= MAX_FLOPS]
    outs = [c for c in outs if cin * c * numel(ks) <= MAX_PARAMS]
    if not outs:
        return None
    cout = rng.choice(outs)
    if transpose and cout % groups:
        return None
    args: Args = {"in_channels": cin, "out_channels": cout, "kernel_size": kernel, "stride": stride}
    args["padding"] = padding
    if transpose:
        args["output_padding"] = output_padding
    args["groups"] = groups
    args["dilation"] = dilation
    _maybe_no_bias(rng, args)
    if not transpose and isinstance(padding, int) and 0 < padding < min(spatial) and rng.random() < 0.12:
        args["padding_mode"] = rng.choice(("reflect", "replicate", "circular"))
    return args


def _conv_shape(nd: int, transpose: bool):
    def out_shape(shape: Shape, a: Args) -> Shape:
        ks = as_tuple(a["kernel_size"], nd)
        if transpose:
            sp = tuple(
                conv_t_out(size, kk, a["stride"], a["padding"], a["output_padding"], a["dilation"])
                for size, kk in zip(shape[2:], ks, strict=True)
            )
        elif a["padding"] == "same":
            sp = tuple(shape[2:])
        else:
            sp = tuple(
                conv_out(size, kk, a["stride"], a["padding"], a["dilation"])
                for size, kk in zip(shape[2:], ks, strict=True)
            )
        return (shape[0], a["out_channels"], *sp)

    return out_shape


def _kernel_dims(args: Args, nd: int) -> tuple[str, ...]:
    return ("*kernel_size",) if isinstance(args["kernel_size"], tuple) else ("kernel_size",) * nd


def _conv_params(nd: int, transpose: bool):
    def params(args: Args) -> dict[str, ParamSpec]:
        per_group = "in_channels" if args["groups"] == 1 else "in_channels // groups"
        out_group = "out_channels" if args["groups"] == 1 else "out_channels // groups"
        if transpose:
            weight = ParamSpec(("in_channels", out_group, *_kernel_dims(args, nd)))
        else:
            weight = ParamSpec(("out_channels", per_group, *_kernel_dims(args, nd)))
        return {"weight": weight, "bias": ParamSpec(("out_channels",), init="small", optional_arg="bias")}

    return params


def _conv_spec(nd: int, transpose: bool) -> OpSpec:
    name = f"ConvTranspose{nd}d" if transpose else f"Conv{nd}d"
    fn = f"F.conv_transpose{nd}d" if transpose else f"F.conv{nd}d"
    dims = {1: "L", 2: "H,W", 3: "D,H,W"}[nd]
    if transpose:
        form = (
            f"{fn}({{x}}, {{weight}}, {{bias}}, stride={{stride}}, padding={{padding}}, "
            "output_padding={output_padding}, groups={groups}, dilation={dilation})"
        )
    else:
        form = (
            f"{fn}({{x}}, {{weight}}, {{bias}}, stride={{stride}}, padding={{padding}}, "
            "dilation={dilation}, groups={groups})"
        )
    defaults = {"stride": 1, "padding": 0, "groups": 1, "dilation": 1, "bias": True, "padding_mode": "zeros"}
    if transpose:
        defaults["output_padding"] = 0
    return OpSpec(
        name=name,
        kind=Kind.CORE,
        category="conv",
        ranks=frozenset({nd + 2}),
        make_args=_conv_args(nd, transpose),
        out_shape=_conv_shape(nd, transpose),
        prompt_hint=(
            f"nn.{name}(in_channels, out_channels, kernel_size, stride, padding): "
            f"(N, C_in, {dims}) -> (N, C_out, {dims} resized)"
        ),
        module=f"nn.{name}",
        positional=("in_channels", "out_channels", "kernel_size"),
        defaults=defaults,
        module_only=frozenset({"padding_mode"}),
        functional=(form,),
        params=_conv_params(nd, transpose),
        effect=Effect.MIX,
        axes=lambda s, a: (1,),
        values=_mix_values(1.0),
        learnable_affine={"shift": "bias"},
        affine_axes=lambda s, a: (1,),
        derived={"in_channels": 1},
        out_dims={1: "out_channels"},
        learnable=True,
        attr="conv_t" if transpose else "conv",
        aliases=(fn.removeprefix("F."),),
    )


# ------------------------------------------------------------------------------------------ matrix products


def _weight_width(rng: random.Random, shape: Shape, k: int) -> int | None:
    rows = numel(shape[:-1])
    ok = [
        n
        for n in _FEATURES
        if rows * n <= MAX_NUMEL and k * n <= MAX_PARAMS and 2 * rows * k * n <= MAX_FLOPS
    ]
    return rng.choice(ok) if ok else None


def _gram_ok(shape: Shape) -> bool:
    m, k = shape[-2], shape[-1]
    rows = numel(shape[:-2])
    return 2 <= m <= 256 and fits((*shape[:-1], m)) and 2 * rows * m * m * k <= MAX_FLOPS


def _matmul_args(allow_gram: bool, min_rank: int):
    def make(rng: random.Random, shape: Shape) -> Args | None:
        if len(shape) < min_rank or not 2 <= shape[-1] <= 2048:
            return None
        if allow_gram and len(shape) >= 3 and _gram_ok(shape) and rng.random() < 0.35:
            return {"mode": "gram"}
        n = _weight_width(rng, shape, shape[-1])
        if n is None:
            return None
        return {"mode": "weight", "in_features": shape[-1], "out_features": n}

    return make


def _matmul_shape(s: Shape, a: Args) -> Shape:
    return (*s[:-1], s[-2]) if a["mode"] == "gram" else (*s[:-1], a["out_features"])


def _weight_param(args: Args, *, batched: bool = False) -> dict[str, ParamSpec]:
    if args["mode"] != "weight":
        return {}
    dims = ("1", "in_features", "out_features") if batched else ("in_features", "out_features")
    return {"weight": ParamSpec(dims, fan_in="in_features")}


def _gram_values(v: Values, args: Args) -> Values:
    if args.get("mode") == "gram":  # x @ x^T: the diagonal sums K squares
        k = args["_in_shape"][-1]
        return Values(0.0, max(k * v.rms**2 / 3, 0.05), -k * v.rms**2, k * v.rms**2)
    return Values(0.0, max(v.rms, 0.05))


def _matmul_op(name: str, hint: str, **fields: Any) -> OpSpec:
    """matmul, mm, addmm, bmm: x @ (a weight or x^T); the output shape and derived args they share."""
    return _last_axis_op(name, "matmul", hint, out_shape=_matmul_shape, derived={"in_features": -1}, **fields)


MATMUL = _matmul_op(
    "matmul",
    "torch.matmul(a, b): (*, M, K) @ (K, N) or (*, K, M) -> (*, M, N)",
    ranks=frozenset({2, 3, 4}),
    make_args=_matmul_args(True, 2),
    functional=lambda a: (
        ("torch.matmul({x}, {x}.transpose(-2, -1))", "{x} @ {x}.transpose(-1, -2)", "{x} @ {x}.mT")
        if a["mode"] == "gram"
        else ("torch.matmul({x}, {weight})", "{x} @ {weight}", "{x}.matmul({weight})")
    ),
    params=_weight_param,
    values=_gram_values,
    aliases=("Matmul", "MatMul"),
)

MM = _matmul_op(
    "mm",
    "torch.mm(a, b): (M, K) @ (K, N) -> (M, N), 2-D only",
    ranks=frozenset({2}),
    make_args=_matmul_args(False, 2),
    functional=("torch.mm({x}, {weight})", "{x}.mm({weight})"),
    params=_weight_param,
    values=_mix_values(1.0),
)


def _addmm_args(rng: random.Random, shape: Shape) -> Args | None:
    args = _matmul_args(False, 2)(rng, shape)
    if args is None:
        return None
    if rng.random() < 0.4:
        args["beta"] = rng.choice((0.5, 2.0))
        args["alpha"] = rng.choice((0.5, 1.5))
    return args


ADDMM = _matmul_op(
    "addmm",
    "torch.addmm(bias, a, b, beta=1, alpha=1): beta*bias + alpha*(a @ b), a (M, K), b (K, N) -> (M, N)",
    ranks=frozenset({2}),
    make_args=_addmm_args,
    functional=lambda a: (
        ("torch.addmm({bias}, {x}, {weight}, beta={beta}, alpha={alpha})",)
        if "beta" in a
        else ("torch.addmm({bias}, {x}, {weight})",)
    ),
    params=lambda a: {
        **_weight_param(a),
        "bias": ParamSpec(("out_features",), init="small"),
    },
    values=_mix_values(1.0),
    learnable_affine={"shift": None},
    affine_axes=lambda s, a: last_axis(s),
    aliases=("Gemm",),
)

BMM = _matmul_op(
    "bmm",
    "torch.bmm(a, b): (B, M, K) @ (B, K, N) -> (B, M, N), 3-D only",
    ranks=frozenset({3}),
    make_args=_matmul_args(True, 3),
    functional=lambda a: (
        ("torch.bmm({x}, {x}.transpose(1, 2))", "{x}.bmm({x}.transpose(1, 2))")
        if a["mode"] == "gram"
        else ("torch.bmm({x}, {weight}.expand({x}.size(0), -1, -1))",)
    ),
    params=lambda a: _weight_param(a, batched=True),
    values=_gram_values,
    aliases=("BMM", "BatchMatmul"),
)


def _einsum_args(rng: random.Random, shape: Shape) -> Args | None:
    rank = len(shape)
    if shape[-1] < 2 or (rank == 4 and shape[1] < 2):
        return None
    if rank == 4:
        c = shape[1]
        rows = numel(shape) // c
        ok = [o for o in _CHANNELS if rows * o <= MAX_NUMEL and 2 * rows * c * o <= MAX_FLOPS]
        if not ok or c > 512:
            return None
        return {"equation": "bchw,oc->bohw", "in_features": c, "out_features": rng.choice(ok)}
    if rank == 3 and _gram_ok(shape) and rng.random() < 0.4:
        return {"equation": "bij,bkj->bik"}
    if rank in (2, 3):
        n = _weight_width(rng, shape, shape[-1])
        if n is None or shape[-1] > 2048:
            return None
        eq = "ij,jk->ik" if rank == 2 else "bij,jk->bik"
        return {"equation": eq, "in_features": shape[-1], "out_features": n}
    return None


def _einsum_shape(s: Shape, a: Args) -> Shape:
    eq = a["equation"]
    if eq == "bchw,oc->bohw":
        return (s[0], a["out_features"], s[2], s[3])
    if eq == "bij,bkj->bik":
        return (*s[:-1], s[-2])
    return (*s[:-1], a["out_features"])


EINSUM = OpSpec(
    name="einsum",
    kind=Kind.CORE,
    category="matmul",
    ranks=frozenset({2, 3, 4}),
    make_args=_einsum_args,
    out_shape=_einsum_shape,
    prompt_hint='torch.einsum(equation, *operands): e.g. "bij,jk->bik" (B, I, J) x (J, K) -> (B, I, K)',
    functional=lambda a: (
        ("torch.einsum({equation}, {x}, {x})",)
        if a["equation"] == "bij,bkj->bik"
        else ("torch.einsum({equation}, {x}, {weight})",)
    ),
    params=lambda a: (
        {}
        if a["equation"] == "bij,bkj->bik"
        else {
            "weight": ParamSpec(
                ("out_features", "in_features")
                if a["equation"].startswith("bchw")
                else ("in_features", "out_features"),
                fan_in="in_features",
            )
        }
    ),
    effect=Effect.MIX,
    axes=lambda s, a: (1,) if len(s) == 4 else last_axis(s),
    values=lambda v, a: _gram_values(
        v, {**a, "mode": "gram" if a["equation"] == "bij,bkj->bik" else "weight"}
    ),
)

CORE_OPS: tuple[OpSpec, ...] = (
    LINEAR,
    BILINEAR,
    *(_conv_spec(nd, False) for nd in (1, 2, 3)),
    *(_conv_spec(nd, True) for nd in (1, 2, 3)),
    MATMUL,
    MM,
    ADDMM,
    BMM,
    EINSUM,
)
