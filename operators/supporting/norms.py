"""Normalization layers (BatchNorm runs in eval mode, so it is a per-channel affine map)."""

from __future__ import annotations

import random
from typing import Any

from operators.shapes import numel
from operators.spec import Args, ArgsFn, Effect, OpSpec, ParamSpec, Shape, Values, fallback
from operators.supporting._common import keep, norm, pick_axis, supporting

_NORMALIZED = Values(0.0, 1.0)


def _batchnorm_args(rng: random.Random, shape: Shape) -> Args | None:
    if shape[1] > 1024:
        return None
    args: Args = {"num_features": shape[1]}
    if rng.random() < 0.3:
        args["eps"] = rng.choice((1e-3, 1e-4))
    if rng.random() < 0.2:
        args["momentum"] = rng.choice((0.05, 0.2))
    if rng.random() < 0.1:
        args["affine"] = False
    return args


def _batchnorm(
    name: str,
    ranks: frozenset[int],
    what: str = "per-channel normalization of (N, C, ...) with running stats (eval mode)",
    aliases: tuple[str, ...] | None = None,
) -> OpSpec:
    """BatchNorm1d/2d/3d and SyncBatchNorm: in eval mode all of them are the same per-channel affine map."""
    return supporting(
        name,
        "norm",
        f"nn.{name}(num_features): {what}",
        ranks=ranks,
        module=f"nn.{name}",
        positional=("num_features",),
        defaults={"eps": 1e-5, "momentum": 0.1, "affine": True},
        make_args=_batchnorm_args,
        effect=Effect.AFFINE,
        values=keep,
        learnable_affine={"shift": "affine", "scale": "affine"},
        affine_axes=lambda s, a: (1,),
        derived={"num_features": 1},
        learnable=True,
        attr="bn",
        aliases=(name.lower(),) if aliases is None else aliases,
    )


def _normalized(v: Values, a: Args) -> Values:
    return _NORMALIZED


def _normalizer(name: str, hint: str, **fields: Any) -> OpSpec:
    """A learnable nn.<name> that normalizes over `axes`: the facts and defaults the norm layers share."""
    fields.setdefault("values", _normalized)
    fields.setdefault("facts", ("mean_const", "var_const", "norm_const"))
    fields.setdefault("cancels", ("shift", "scale"))
    return supporting(
        name,
        "norm",
        hint,
        module=f"nn.{name}",
        effect=Effect.NORMALIZE,
        constant_if=("uniform",),
        learnable=True,
        **fields,
    )


def _affine_norm(
    name: str,
    hint: str,
    flag: str,
    forms: tuple[str, str],
    shape: tuple[str, ...],
    bias: bool = True,
    **fields: Any,
) -> OpSpec:
    """LayerNorm, GroupNorm, RMSNorm: forms = (plain, affine); `flag=False` drops the weight (and bias)."""
    plain, affine = forms

    def params(a: Args) -> dict[str, ParamSpec]:
        if a.get(flag) is False:
            return {}
        out = {"weight": ParamSpec(shape, init="ones_jitter")}
        if bias:
            out["bias"] = ParamSpec(shape, init="small")
        return out

    return _normalizer(
        name,
        hint,
        defaults={flag: True},
        functional=lambda a: (plain,) if a.get(flag) is False else (affine,),
        params=params,
        learnable_affine={"shift": flag, "scale": flag} if bias else {"scale": flag},
        **fields,
    )


def _last_axes_args(max_k: int):
    def make(rng: random.Random, shape: Shape) -> Args | None:
        k = rng.choice([k for k in range(1, max_k + 1) if k < len(shape)])
        dims = tuple(shape[-k:])
        if numel(dims) < 4 or numel(dims) > 16384:
            return None
        args: Args = {"normalized_shape": dims}
        if rng.random() < 0.15:
            args["elementwise_affine"] = False
        return args

    return make


def _last_axes(shape: Shape, a: Args) -> tuple[int, ...]:
    k = len(a["normalized_shape"])
    return tuple(range(len(shape) - k, len(shape)))


def _group_args(rng: random.Random, shape: Shape) -> Args | None:
    c = shape[1]
    spatial = numel(shape[2:])
    groups = [g for g in (1, 2, 4, 8, 16, c) if c % g == 0 and (c // g) * spatial >= 4]
    if not groups or c > 1024:
        return None
    args: Args = {"num_groups": rng.choice(groups), "num_channels": c}
    if rng.random() < 0.15:
        args["affine"] = False
    return args


def _group_axes(shape: Shape, a: Args) -> tuple[int, ...]:
    spatial = tuple(range(2, len(shape)))
    return spatial if a["num_groups"] == a["num_channels"] else (1, *spatial)


def _instance_args(rng: random.Random, shape: Shape) -> Args | None:
    if numel(shape[2:]) < 4 or shape[1] > 1024:
        return None
    args: Args = {"num_features": shape[1]}
    if rng.random() < 0.5:
        args["affine"] = True
    return args


def _instance(name: str, nd: int) -> OpSpec:
    return _normalizer(
        name,
        f"nn.{name}(num_features, affine=False): per-sample, per-channel normalization over the spatial axes",
        ranks=frozenset({nd + 2}),
        positional=("num_features",),
        defaults={"affine": False},
        functional=lambda a: (
            ("F.instance_norm({x}, weight={weight}, bias={bias})",)
            if a.get("affine")
            else ("F.instance_norm({x})",)
        ),
        params=lambda a: (
            {
                "weight": ParamSpec(("num_features",), init="ones_jitter"),
                "bias": ParamSpec(("num_features",), init="small"),
            }
            if a.get("affine")
            else {}
        ),
        make_args=_instance_args,
        axes=lambda s, a: tuple(range(2, len(s))),
        learnable_affine={"shift": "affine", "scale": "affine"},
        affine_axes=lambda s, a: (1,),
        derived={"num_features": 1},
        attr="norm",
        aliases=(name.lower(),),
    )


def _lrn_args(rng: random.Random, shape: Shape) -> Args | None:
    if shape[1] < 2:
        return None
    args: Args = {"size": rng.choice([s for s in (2, 3, 5) if s <= shape[1]])}
    if rng.random() < 0.3:
        args["alpha"] = 1e-3
        args["beta"] = 0.75
        args["k"] = 2.0
    return args


def _lrn(name: str, hint: str, ranks: frozenset[int], make_args: ArgsFn, **fields: Any) -> OpSpec:
    """LocalResponseNorm and CrossMapLRN2d: divide each channel by its neighbours' energy (window `size`)."""
    return supporting(
        name,
        "norm",
        hint,
        ranks=ranks,
        module=f"nn.{name}",
        positional=("size",),
        make_args=make_args,
        effect=Effect.NONLINEAR,
        values=keep,
        attr="lrn",
        **fields,
    )


def _normalize_args(rng: random.Random, shape: Shape) -> Args | None:
    axis = pick_axis(rng, shape, min_size=2)
    return None if axis is None else {"dim": axis}


NORMS: tuple[OpSpec, ...] = (
    _batchnorm("BatchNorm1d", frozenset({2, 3})),
    _batchnorm("BatchNorm2d", frozenset({4}), aliases=("batchnorm2d", "BatchNorm")),
    _batchnorm("BatchNorm3d", frozenset({5})),
    _batchnorm(
        "SyncBatchNorm",
        frozenset({2, 3, 4, 5}),
        "BatchNorm that syncs stats across processes when training; eval = BatchNorm",
        aliases=(),
    ),
    _affine_norm(
        "LayerNorm",
        "nn.LayerNorm(normalized_shape): normalizes over the last len(normalized_shape) axes",
        "elementwise_affine",
        ("F.layer_norm({x}, {normalized_shape})", "F.layer_norm({x}, {normalized_shape}, {weight}, {bias})"),
        ("*normalized_shape",),
        positional=("normalized_shape",),
        make_args=_last_axes_args(2),
        axes=_last_axes,
        affine_axes=_last_axes,
        attr="ln",
        aliases=("layer_norm",),
    ),
    _affine_norm(
        "GroupNorm",
        "nn.GroupNorm(num_groups, num_channels): normalizes channel groups (C divisible by num_groups)",
        "affine",
        ("F.group_norm({x}, {num_groups})", "F.group_norm({x}, {num_groups}, {weight}, {bias})"),
        ("num_channels",),
        positional=("num_groups", "num_channels"),
        make_args=_group_args,
        axes=_group_axes,
        affine_axes=lambda s, a: (1,),
        derived={"num_channels": 1},
        attr="gn",
        aliases=("group_norm",),
    ),
    _instance("InstanceNorm1d", 1),
    _instance("InstanceNorm2d", 2),
    _instance("InstanceNorm3d", 3),
    _lrn(
        "LocalResponseNorm",
        "nn.LocalResponseNorm(size): normalizes each channel by its neighbours (N, C, ...)",
        frozenset({3, 4, 5}),
        _lrn_args,
        defaults={"alpha": 1e-4, "beta": 0.75, "k": 1.0},
        functional=("F.local_response_norm({x}, {size})",),
        aliases=("local_response_norm", "LRN"),
    ),
    _lrn(
        "CrossMapLRN2d",
        "nn.CrossMapLRN2d(size): legacy cross-channel LRN for (N, C, H, W)",
        frozenset({4}),
        lambda rng, s: (
            {"size": rng.choice([z for z in (2, 3, 5) if z <= s[1]] or [1])} if s[1] >= 2 else None
        ),
        inductor=fallback(
            "implemented as a custom autograd.Function: TorchDynamo skips it and it runs eagerly"
        ),
    ),
    _affine_norm(
        "RMSNorm",
        "nn.RMSNorm(normalized_shape): x / rms(x) over the last axes, times a learnable weight",
        "elementwise_affine",
        ("F.rms_norm({x}, {normalized_shape})", "F.rms_norm({x}, {normalized_shape}, {weight})"),
        ("*normalized_shape",),
        bias=False,
        positional=("normalized_shape",),
        make_args=_last_axes_args(2),
        axes=_last_axes,
        values=lambda v, a: Values(v.mean / max(v.rms, 1e-3), 1.0),
        facts=("norm_const",),
        cancels=("scale",),
        affine_axes=_last_axes,
        attr="rms_norm",
        aliases=("rms_norm",),
    ),
    supporting(
        "normalize",
        "norm",
        "F.normalize(x, p=2, dim=1): x / max(||x||_p along dim, eps)",
        functional=("F.normalize({x}, p=2, dim={dim})", "F.normalize({x}, dim={dim})"),
        make_args=_normalize_args,
        effect=Effect.NORMALIZE,
        axes=lambda s, a: (norm(a["dim"], len(s)),),
        values=lambda v, a: Values(0.0, 0.3, -1.0, 1.0),
        facts=("norm_const",),
        constant_if=("uniform",),
        cancels=("scale",),
        aliases=("Normalize", "l2_normalize"),
    ),
)
