"""Pooling: max / average / power-average, adaptive, fractional and max-unpooling."""

from __future__ import annotations

import random
from typing import Any

from operators.shapes import pool_out
from operators.spec import NATIVE, Args, Effect, OpSpec, Shape, Values, fallback, unsupported
from operators.supporting._common import keep, supporting

_DIMS = {1: "L", 2: "H, W", 3: "D, H, W"}


def _window_args(nd: int, *, avg: bool = False, max_kernel: int = 3):
    def make(rng: random.Random, shape: Shape) -> Args | None:
        if len(shape) != nd + 2:
            return None
        spatial = shape[2:]
        if min(spatial) < 2:
            return None
        k = rng.choice([k for k in (2, 2, 3) if k <= min(spatial) and k <= max_kernel] or [2])
        if k > min(spatial):
            return None
        args: Args = {"kernel_size": k}
        stride = rng.choice((None, None, 1, 2))
        if stride is not None:
            args["stride"] = stride
        if k > 2 and rng.random() < 0.3:
            args["padding"] = 1
        if rng.random() < 0.1:
            args["ceil_mode"] = True
        if avg and "padding" in args and rng.random() < 0.5:
            args["count_include_pad"] = False
        out = _window_shape(nd)(shape, args)
        return args if min(out[2:]) >= 1 else None

    return make


def _window_shape(nd: int):
    def out_shape(shape: Shape, a: Args) -> Shape:
        k = a["kernel_size"]
        s = a.get("stride") or k
        p = a.get("padding", 0)
        sp = tuple(pool_out(size, k, s, p, 1, a.get("ceil_mode", False)) for size in shape[2:])
        return (*shape[:2], *sp)

    return out_shape


def _window_form(fn: str, *, lp: bool = False) -> object:
    def forms(a: Args) -> tuple[str, ...]:
        head = f"{fn}({{x}}, {{norm_type}}, {{kernel_size}}" if lp else f"{fn}({{x}}, {{kernel_size}}"
        extra = "".join(
            f", {key}={{{key}}}"
            for key in ("stride", "padding", "ceil_mode", "count_include_pad")
            if key in a
        )
        return (head + extra + ")",)

    return forms


def _pool(name: str, nd: int, hint: str, **fields: Any) -> OpSpec:
    """A pooling layer nn.<name> over the nd spatial axes of (N, C, *spatial): shared fields spelled once."""
    return supporting(
        name, "pool", hint, ranks=frozenset({nd + 2}), module=f"nn.{name}", attr="pool", **fields
    )


def _window_pool(nd: int, kind: str) -> OpSpec:
    """MaxPool / AvgPool: the same windows, arguments and forms; only the value model (and effect) differ."""
    name = f"{kind}Pool{nd}d"
    fn = f"{kind.lower()}_pool{nd}d"
    avg = kind == "Avg"
    return _pool(
        name,
        nd,
        f"nn.{name}(kernel_size, stride=kernel_size, padding=0): (N, C, {_DIMS[nd]}) -> "
        + ("averaged windows" if avg else "pooled"),
        positional=("kernel_size",),
        functional=_window_form(f"F.{fn}"),
        make_args=_window_args(nd, avg=avg),
        out_shape=_window_shape(nd),
        effect=Effect.AFFINE if avg else Effect.POOL,
        values=(lambda v, a: Values(v.mean, max(v.std * 0.5, 1e-3), v.lo, v.hi))
        if avg
        else (lambda v, a: Values(v.mean + 0.8 * v.std, v.std * 0.7, v.lo, v.hi)),
        aliases=(fn, f"{kind}Pool") if nd == 2 else (fn,),
    )


def _lp_pool(nd: int) -> OpSpec:
    name = f"LPPool{nd}d"

    def make(rng: random.Random, shape: Shape) -> Args | None:
        args = _window_args(nd)(rng, shape)
        if args is None:
            return None
        args.pop("padding", None)
        args.pop("ceil_mode", None)
        return {"norm_type": rng.choice((2.0, 2.0, 1.0)), **args}

    return _pool(
        name,
        nd,
        f"nn.{name}(norm_type, kernel_size): power-average pooling (sum x^p)^(1/p) over windows",
        positional=("norm_type", "kernel_size"),
        functional=_window_form(f"F.lp_pool{nd}d", lp=True),
        make_args=make,
        out_shape=_window_shape(nd),
        effect=Effect.POOL,
        values=lambda v, a: Values(v.rms * 2, v.rms, 0.0 if a["norm_type"] == 2.0 else v.lo, v.hi * 9),
        domain="no_zero_floor",
        aliases=(f"lp_pool{nd}d",),
    )


def _adaptive_args(nd: int):
    def make(rng: random.Random, shape: Shape) -> Args | None:
        if len(shape) != nd + 2:
            return None
        spatial = shape[2:]
        if max(spatial) < 2:
            return None  # pooling size-1 axes is the identity
        if rng.random() < 0.4:
            return {"output_size": 1}
        sizes = tuple(rng.choice([s for s in (1, 2, 3, 4, 5, 7, 8) if s < size] or [1]) for size in spatial)
        if nd > 1 and len(set(sizes)) == 1 and rng.random() < 0.6:
            return {"output_size": sizes[0]}
        return {"output_size": sizes if nd > 1 else sizes[0]}

    return make


def _adaptive_shape(nd: int):
    def out_shape(shape: Shape, a: Args) -> Shape:
        size = a["output_size"]
        sizes = tuple(size) if isinstance(size, tuple) else (size,) * nd
        return (*shape[:2], *sizes)

    return out_shape


def _collapsed_axes(nd: int):
    """Spatial axes an adaptive pool collapses to size 1 (there it is a full reduction)."""

    def axes(shape: Shape, a: Args) -> tuple[int, ...]:
        out = _adaptive_shape(nd)(shape, a)
        return tuple(i for i in range(2, len(shape)) if out[i] == 1 and shape[i] > 1)

    return axes


_ADAPTIVE_3D_FALLBACK = fallback(
    "aten._adaptive_avg_pool3d / aten.adaptive_max_pool3d have no Inductor lowering: ATen fallback kernels "
    "(global pooling to size 1 still becomes a generated reduction)"
)


def _adaptive(nd: int, kind: str) -> OpSpec:
    name = f"Adaptive{kind}Pool{nd}d"
    avg = kind == "Avg"
    return _pool(
        name,
        nd,
        f"nn.{name}(output_size): (N, C, {_DIMS[nd]}) -> (N, C, *output_size); output_size=1 is a global pool",
        positional=("output_size",),
        functional=(f"F.adaptive_{kind.lower()}_pool{nd}d({{x}}, {{output_size}})",),
        make_args=_adaptive_args(nd),
        out_shape=_adaptive_shape(nd),
        effect=Effect.AFFINE if avg else Effect.POOL,
        axes=_collapsed_axes(nd),
        constant_if=("sum_const", "mean_const") if avg else ("padded", "ceil"),
        cancels=() if avg else ("negpart",),
        values=(lambda v, a: Values(v.mean, max(v.std * 0.3, 1e-3), v.lo, v.hi))
        if avg
        else (lambda v, a: Values(v.mean + 1.5 * v.std, v.std * 0.5, v.lo, v.hi)),
        aliases=(f"adaptive_{kind.lower()}_pool{nd}d", "GlobalAvgPool")
        if avg and nd == 2
        else (f"adaptive_{kind.lower()}_pool{nd}d",),
        inductor=_ADAPTIVE_3D_FALLBACK if nd == 3 else NATIVE,
    )


def _fractional(nd: int) -> OpSpec:
    name = f"FractionalMaxPool{nd}d"
    return _pool(
        name,
        nd,
        f"nn.{name}(kernel_size, output_ratio): max pooling over pseudo-random windows",
        positional=("kernel_size",),
        make_args=lambda rng, s: {"kernel_size": 2, "output_ratio": 0.5} if min(s[2:]) >= 4 else None,
        out_shape=lambda s, a: (*s[:2], *(int(size * 0.5) for size in s[2:])),
        effect=Effect.POOL,
        values=keep,
        inductor=unsupported(
            "draws random pooling regions on every call: eager runs and compiled runs disagree by design, so "
            "its output is nondeterministic"
        ),
    )


def _unpool(nd: int) -> OpSpec:
    name = f"MaxUnpool{nd}d"

    def make(rng: random.Random, shape: Shape) -> Args | None:
        if len(shape) != nd + 2 or min(shape[2:]) < 2 or any(s % 2 for s in shape[2:]):
            return None  # odd sizes: the pooled indices point past the unpooled output
        return {"kernel_size": 2}

    return supporting(
        name,
        "pool",
        f"nn.{name}(kernel_size): inverse of MaxPool{nd}d(return_indices=True), zeros except at the maxima",
        ranks=frozenset({nd + 2}),
        functional=(
            f"F.max_unpool{nd}d(*F.max_pool{nd}d({{x}}, {{kernel_size}}, return_indices=True), {{kernel_size}})",
        ),
        make_args=make,
        out_shape=lambda s, a: (*s[:2], *((size // 2) * 2 for size in s[2:])),
        effect=Effect.NONLINEAR,
        values=lambda v, a: Values(v.mean * 0.25, v.std, min(v.lo, 0.0), v.hi),
        implies=(f"MaxPool{nd}d",),
        aliases=(f"max_unpool{nd}d",),
    )


POOLING: tuple[OpSpec, ...] = (
    *(_window_pool(nd, "Max") for nd in (1, 2, 3)),
    *(_window_pool(nd, "Avg") for nd in (1, 2, 3)),
    *(_lp_pool(nd) for nd in (1, 2, 3)),
    *(_adaptive(nd, "Avg") for nd in (1, 2, 3)),
    *(_adaptive(nd, "Max") for nd in (1, 2, 3)),
    _fractional(2),
    _fractional(3),
    *(_unpool(nd) for nd in (1, 2, 3)),
)
