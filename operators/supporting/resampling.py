"""Upsampling / interpolation and dropout layers (dropout is the identity in eval mode)."""

from __future__ import annotations

import random
from typing import Any

from operators.shapes import MAX_NUMEL, numel
from operators.spec import Args, ArgsFn, Effect, OpSpec, Shape, Values, ValuesFn
from operators.supporting._common import ANY_RANK, keep, supporting

_LINEAR_MODE = {3: "linear", 4: "bilinear", 5: "trilinear"}


def _upsample_args(rng: random.Random, shape: Shape) -> Args | None:
    rank = len(shape)
    factor = 2
    if numel(shape) * factor ** (rank - 2) > MAX_NUMEL:
        return None
    modes = ["nearest", _LINEAR_MODE[rank]] + (["bicubic"] if rank == 4 else [])
    mode = rng.choice(modes)
    args: Args = {"scale_factor": float(factor) if rng.random() < 0.5 else factor, "mode": mode}
    if mode != "nearest" and rng.random() < 0.5:
        args["align_corners"] = rng.choice((True, False))
    return args


def _scaled_shape(shape: Shape, a: Args) -> Shape:
    if "size" in a:
        size = a["size"]
        sizes = size if isinstance(size, tuple) else (size,) * (len(shape) - 2)
        return (*shape[:2], *sizes)
    f = int(a["scale_factor"])
    return (*shape[:2], *(s * f for s in shape[2:]))


def _interpolate_args(rng: random.Random, shape: Shape) -> Args | None:
    rank = len(shape)
    mode = rng.choice(["nearest", _LINEAR_MODE[rank], "area"] + (["bicubic"] if rank == 4 else []))
    if rng.random() < 0.5:
        sizes = tuple(max(2, int(s * rng.choice((0.5, 1.5, 2.0)))) for s in shape[2:])
        if numel(shape[:2]) * numel(sizes) > MAX_NUMEL:
            return None
        args: Args = {"size": sizes if rank > 3 else sizes[0], "mode": mode}
    else:
        if numel(shape) * 2 ** (rank - 2) > MAX_NUMEL:
            return None
        args = {"scale_factor": 2, "mode": mode}
    if mode not in ("nearest", "area") and rng.random() < 0.5:
        args["align_corners"] = False
    return args


def _interpolate_forms(a: Args) -> tuple[str, ...]:
    key = "size" if "size" in a else "scale_factor"
    align = ", align_corners={align_corners}" if "align_corners" in a else ""
    return (f"F.interpolate({{x}}, {key}={{{key}}}, mode={{mode}}{align})",)


def _size_one_axes(shape: Shape, a: Args) -> tuple[int, ...]:
    """Spatial axes of size 1: resampling replicates them, so the output is uniform along them."""
    return tuple(i for i in range(2, len(shape)) if shape[i] == 1)


def _smoothed(v: Values, a: Args) -> Values:
    return Values(v.mean, v.std * (1.0 if a.get("mode") == "nearest" else 0.8), v.lo, v.hi)


def _resample(
    name: str, hint: str, ranks: frozenset[int], make_args: ArgsFn, values: ValuesFn, **fields: Any
) -> OpSpec:
    """Upsample, UpsamplingNearest2d/Bilinear2d, interpolate: resize the spatial axes of (N, C, *spatial)."""
    return supporting(
        name,
        "upsample",
        hint,
        ranks=ranks,
        make_args=make_args,
        out_shape=_scaled_shape,
        effect=Effect.AFFINE,
        facts=("uniform",),
        fact_axes=_size_one_axes,
        values=values,
        **fields,
    )


def _upsampling_2d(name: str, what: str, values: ValuesFn) -> OpSpec:
    """The fixed-mode nn.Upsampling*2d layers: a factor of 2 over (N, C, H, W)."""
    return _resample(
        name,
        f"nn.{name}(scale_factor=2): {what} of (N, C, H, W)",
        frozenset({4}),
        lambda rng, s: {"scale_factor": 2} if numel(s) * 4 <= MAX_NUMEL else None,
        values,
        module=f"nn.{name}",
        attr="upsample",
    )


def _dropout(name: str, ranks: frozenset[int], forms: tuple[str, ...] = ()) -> OpSpec:
    return supporting(
        name,
        "dropout",
        f"nn.{name}(p=0.5): random zeroing while training; the identity in eval mode",
        ranks=ranks,
        module=f"nn.{name}",
        positional=("p",),
        functional=forms,
        make_args=lambda rng, s: {"p": rng.choice((0.1, 0.2, 0.25, 0.3, 0.5))},
        effect=Effect.IDENTITY,
        values=keep,
        attr="dropout",
        aliases=(name.lower(),) if forms else (),
    )


RESAMPLING: tuple[OpSpec, ...] = (
    _resample(
        "Upsample",
        "nn.Upsample(scale_factor, mode='nearest'|'linear'|'bilinear'|'bicubic'|'trilinear'): (N, C, *S) -> (N, C, *S*f)",
        frozenset({3, 4, 5}),
        _upsample_args,
        _smoothed,
        module="nn.Upsample",
        attr="upsample",
    ),
    _upsampling_2d("UpsamplingNearest2d", "nearest-neighbour upsampling", keep),
    _upsampling_2d("UpsamplingBilinear2d", "bilinear upsampling (align_corners=True)", _smoothed),
    _resample(
        "interpolate",
        "F.interpolate(x, size=None, scale_factor=None, mode='nearest'): resamples the spatial axes",
        frozenset({3, 4, 5}),
        _interpolate_args,
        _smoothed,
        functional=_interpolate_forms,
        aliases=("Interpolate", "resize"),
    ),
)

DROPOUT: tuple[OpSpec, ...] = (
    _dropout("Dropout", ANY_RANK, ("F.dropout({x}, p={p}, training=self.training)",)),
    _dropout("Dropout1d", frozenset({3})),
    _dropout("Dropout2d", frozenset({4})),
    _dropout("Dropout3d", frozenset({5})),
    _dropout("AlphaDropout", ANY_RANK),
    _dropout("FeatureAlphaDropout", frozenset({3, 4, 5})),
)
