"""Padding layers (zero, constant, reflection, replication, circular) and F.pad."""

from __future__ import annotations

import random

from operators.spec import Args, Effect, OpSpec, Shape, Values
from operators.supporting._common import supporting

_MODES = {
    "Zero": "constant",
    "Constant": "constant",
    "Reflection": "reflect",
    "Replication": "replicate",
    "Circular": "circular",
}


def _pad_tuple(
    rng: random.Random, spatial: tuple[int, ...], limit_by_size: bool
) -> tuple[int, ...] | int | None:
    """Per-side padding (last axis first, as F.pad wants it); an int when all sides are equal."""
    sides: list[int] = []
    for size in reversed(spatial):
        top = min(3, size - 1) if limit_by_size else 3
        if top < 0:
            return None
        sides += [rng.randint(0, top), rng.randint(0, top)]
    if not any(sides):
        sides[0] = 1
        if limit_by_size and spatial[-1] < 2:
            return None
    if len(set(sides)) == 1 and rng.random() < 0.6:
        return sides[0]
    return tuple(sides)


def _padded(shape: Shape, pad: int | tuple[int, ...], nd: int) -> Shape:
    sides = (pad,) * (2 * nd) if isinstance(pad, int) else pad
    out = list(shape)
    for i in range(nd):
        out[len(shape) - 1 - i] += sides[2 * i] + sides[2 * i + 1]
    return tuple(out)


def _pad_layer(kind: str, nd: int) -> OpSpec:
    name = f"{kind}Pad{nd}d"
    mode = _MODES[kind]

    def make(rng: random.Random, shape: Shape) -> Args | None:
        pad = _pad_tuple(rng, shape[-nd:], limit_by_size=mode != "constant")
        if pad is None:
            return None
        args: Args = {"padding": pad}
        if kind == "Constant":
            args["value"] = rng.choice((0.0, 0.5, -1.0, 1.0))
        return args

    return supporting(
        name,
        "padding",
        f"nn.{name}(padding{', value' if kind == 'Constant' else ''}): pads the last {nd} axes ({mode})",
        # Non-constant modes only in the batched form: Inductor mis-indexes an unbatched replication pad fused
        # after a flatten (AssertionError "vr must not be None", torch 2.13).
        ranks=frozenset({nd + 1, nd + 2}) if mode == "constant" else frozenset({nd + 2}),
        module=f"nn.{name}",
        positional=("padding", "value") if kind == "Constant" else ("padding",),
        make_args=make,
        out_shape=lambda s, a: _padded(s, a["padding"], nd),
        effect=Effect.LAYOUT,
        facts=("padded",),
        fact_axes=lambda s, a: tuple(range(len(s) - nd, len(s))),
        values=lambda v, a: (
            Values(v.mean, v.std, min(v.lo, a.get("value", 0.0)), max(v.hi, a.get("value", 0.0)))
            if mode == "constant"
            else v
        ),
        attr="pad",
    )


def _fpad_args(rng: random.Random, shape: Shape) -> Args | None:
    nd = rng.choice([n for n in (1, 2, 3) if n <= len(shape) - 1])
    mode = rng.choice(("constant", "constant", "reflect", "replicate", "circular"))
    if len(shape) != nd + 2:
        mode = "constant"  # non-constant modes: only the batched (N, C, *spatial) form (see _pad_layer)
    pad = _pad_tuple(rng, shape[-nd:], limit_by_size=mode != "constant")
    if pad is None:
        return None
    sides = (pad,) * (2 * nd) if isinstance(pad, int) else pad
    args: Args = {"pad": tuple(sides), "mode": mode}
    if mode == "constant" and rng.random() < 0.4:
        args["value"] = rng.choice((0.5, -0.5, 1.0))
    return args


def _fpad_shape(shape: Shape, a: Args) -> Shape:
    return _padded(shape, a["pad"], len(a["pad"]) // 2)


PADDING: tuple[OpSpec, ...] = (
    *(
        _pad_layer(kind, nd)
        for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
        for nd in (1, 2, 3)
    ),
    supporting(
        "pad",
        "padding",
        "F.pad(x, pad, mode='constant', value=0): pad = (left, right, top, bottom, ...) from the last axis",
        functional=lambda a: (
            ("F.pad({x}, {pad}, mode={mode}, value={value})",)
            if "value" in a
            else ("F.pad({x}, {pad}, mode={mode})",)
        ),
        make_args=_fpad_args,
        out_shape=_fpad_shape,
        effect=Effect.LAYOUT,
        facts=("padded",),
        fact_axes=lambda s, a: tuple(range(len(s) - len(a["pad"]) // 2, len(s))),
        values=lambda v, a: Values(
            v.mean, v.std, min(v.lo, a.get("value", 0.0)), max(v.hi, a.get("value", 0.0))
        ),
        aliases=("Pad", "F.pad"),
    ),
)
