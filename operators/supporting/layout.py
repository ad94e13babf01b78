"""Reshapes, permutes, slicing, concatenation, channel/pixel shuffles, fold/unfold and pairwise comparisons.

Shape-only ops are what the composer uses as rank adapters, so each one declares its axis map.
"""

from __future__ import annotations

import random
from typing import Any

from operators.shapes import (
    MAX_NUMEL,
    conv_out,
    factor_pairs,
    flatten_map,
    flatten_shape,
    insert_map,
    numel,
    permute_map,
    reduce_map,
    reshape_map,
    unflatten_map,
)
from operators.spec import Args, ArgsFn, Effect, Operand, OpSpec, Shape, Values
from operators.supporting._common import ANY_RANK, axis_choices, keep, norm, spell_axis, supporting

_PAIR_FULL = Operand(kinds=("tensor", "param"), param_init="unit", learnable="other", param_full=True)
_CONCAT = Operand(kinds=("tensor", "self"))


def _layout(name: str, hint: str, **fields) -> OpSpec:
    fields.setdefault("effect", Effect.LAYOUT)
    fields.setdefault("values", keep)
    return supporting(name, "layout", hint, **fields)


def _nn_layout(name: str, snake: str, hint: str, **fields: Any) -> OpSpec:
    """A layout op with an nn class: module nn.<name>; `snake` is its attribute name and (default) alias."""
    fields.setdefault("aliases", (snake,))
    return _layout(name, hint, module=f"nn.{name}", attr=snake, **fields)


# ----------------------------------------------------------------------------------------- flatten & reshape


def _flatten_args(rng: random.Random, shape: Shape) -> Args | None:
    rank = len(shape)
    if rank < 3:
        return None
    start = rng.randint(1, rank - 2)
    end = rng.randint(start + 1, rank - 1)
    return {"start_dim": start, "end_dim": -1 if end == rank - 1 and rng.random() < 0.7 else end}


def _flatten_forms(a: Args) -> tuple[str, ...]:
    forms = ["torch.flatten({x}, {start_dim}, {end_dim})", "{x}.flatten({start_dim}, {end_dim})"]
    if a["end_dim"] == -1:
        forms.append("{x}.flatten({start_dim})")
        if a["start_dim"] == 1:
            forms.append("torch.flatten({x}, 1)")
    return tuple(forms)


def _unflatten_args(rng: random.Random, shape: Shape) -> Args | None:
    if len(shape) >= 5:
        return None
    options = [a for a in range(1, len(shape)) if factor_pairs(shape[a])]
    if not options:
        return None
    axis = rng.choice(options)
    a, b = rng.choice(factor_pairs(shape[axis]))
    rng.random()  # kept so the composer's RNG stream (and every other choice) is unchanged
    # (a, -1), not (a, b): the split follows the axis when a size profile grows it (docs/sizes_and_dtypes.md)
    sizes = (a, -1) if b > 0 else (a, b)
    return {"dim": spell_axis(rng, axis, len(shape)), "unflattened_size": sizes}


def _unflatten_shape(shape: Shape, a: Args) -> Shape:
    axis = norm(a["dim"], len(shape))
    first, second = a["unflattened_size"]
    second = shape[axis] // first if second == -1 else second
    return (*shape[:axis], first, second, *shape[axis + 1 :])


def _reshape_args(rng: random.Random, shape: Shape) -> Args | None:
    """A merge of two adjacent non-batch axes or a split of one (so the axis map stays known)."""
    rank = len(shape)
    moves: list[Shape] = []
    for a in range(1, rank - 1):
        moves.append((*shape[:a], shape[a] * shape[a + 1], *shape[a + 2 :]))
    if rank < 5:
        for a in range(1, rank):
            for p, q in factor_pairs(shape[a]):
                moves.append((*shape[:a], p, q, *shape[a + 1 :]))
    moves = [m for m in moves if 2 <= len(m) <= 5]
    if not moves:
        return None
    target = list(rng.choice(moves))
    if rng.random() < 0.4:
        rng.randrange(len(target))  # kept so the composer's RNG stream is unchanged
    target[0] = -1  # the batch axis is never written out, so a size profile can grow it
    return {"shape": tuple(target)}


def _reshape_shape(shape: Shape, a: Args) -> Shape:
    target = list(a["shape"])
    if -1 in target:
        known = numel([t for t in target if t != -1])
        target[target.index(-1)] = numel(shape) // known
    return tuple(target)


def _reshape_map(shape: Shape, a: Args) -> list[tuple[int, ...]]:
    mapped = reshape_map(shape, _reshape_shape(shape, a))
    return mapped if mapped is not None else [tuple(range(len(a["shape"])))] * len(shape)


def _reshape_op(name: str, hint: str, forms: tuple[str, ...], **fields: Any) -> OpSpec:
    """reshape and view: the same shape change, spelled two ways (view also needs a contiguous input)."""
    return _layout(
        name,
        hint,
        ranks=frozenset({2, 3, 4, 5}),
        functional=forms,
        make_args=_reshape_args,
        out_shape=_reshape_shape,
        axis_map=_reshape_map,
        aliases=(name.capitalize(),),
        **fields,
    )


# ----------------------------------------------------------------------------------------- permute & friends


def _permute_args(rng: random.Random, shape: Shape) -> Args | None:
    rank = len(shape)
    if rank < 3:
        return None
    rest = list(range(1, rank))
    perm = rest[:]
    while perm == rest:
        rng.shuffle(perm)
    return {"dims": (0, *perm)}


def _permute_shape(shape: Shape, a: Args) -> Shape:
    return tuple(shape[d] for d in a["dims"])


def _transpose_args(rng: random.Random, shape: Shape) -> Args | None:
    rank = len(shape)
    if rank < 3:
        return None
    d0, d1 = sorted(rng.sample(range(1, rank), 2))
    return {"dim0": spell_axis(rng, d0, rank), "dim1": spell_axis(rng, d1, rank)}


def _transpose_perm(shape: Shape, a: Args) -> list[int]:
    rank = len(shape)
    perm = list(range(rank))
    d0, d1 = norm(a["dim0"], rank), norm(a["dim1"], rank)
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return perm


def _transpose_forms(a: Args) -> tuple[str, ...]:
    forms = [
        "{x}.transpose({dim0}, {dim1})",
        "torch.transpose({x}, {dim0}, {dim1})",
        "{x}.swapaxes({dim0}, {dim1})",
    ]
    if (a["dim0"], a["dim1"]) in {(-2, -1)}:
        forms.append("{x}.mT")
    return tuple(forms)


def _unsqueeze_args(rng: random.Random, shape: Shape) -> Args | None:
    if len(shape) >= 5:
        return None
    return {"dim": rng.randint(1, len(shape))}


def _squeeze_args(rng: random.Random, shape: Shape) -> Args | None:
    ones = [a for a in range(1, len(shape)) if shape[a] == 1]
    if not ones:
        return None
    return {"dim": spell_axis(rng, rng.choice(ones), len(shape))}


# ------------------------------------------------------------------------------------ concat, split, select


def _cat_args(rng: random.Random, shape: Shape) -> Args | None:
    if numel(shape) * 2 > MAX_NUMEL or len(shape) < 2:
        return None
    return {"dim": spell_axis(rng, rng.randint(1, len(shape) - 1), len(shape))}


def _cat_shape(shape: Shape, a: Args) -> Shape:
    axis = norm(a["dim"], len(shape))
    return tuple(s * 2 if i == axis else s for i, s in enumerate(shape))


def _stack_args(rng: random.Random, shape: Shape) -> Args | None:
    if numel(shape) * 2 > MAX_NUMEL or len(shape) >= 5:
        return None
    return {"dim": rng.randint(1, len(shape))}


def _chunk_args(rng: random.Random, shape: Shape) -> Args | None:
    options = [
        (a, c) for a in range(1, len(shape)) for c in (2, 3, 4) if shape[a] % c == 0 and shape[a] // c >= 1
    ]
    if not options:
        return None
    axis, chunks = rng.choice(options)
    return {"chunks": chunks, "dim": spell_axis(rng, axis, len(shape)), "index": rng.randrange(chunks)}


def _chunk_shape(shape: Shape, a: Args) -> Shape:
    axis = norm(a["dim"], len(shape))
    return tuple(s // a["chunks"] if i == axis else s for i, s in enumerate(shape))


def _narrow_args(rng: random.Random, shape: Shape) -> Args | None:
    options = axis_choices(shape, 3)
    if not options:
        return None
    axis = rng.choice(options)
    size = shape[axis]
    length = rng.randint(max(2, size // 2), size - 1)
    start = rng.randint(0, size - length)
    dim = axis if rng.random() < 0.5 else axis - len(shape)
    return {"dim": dim, "start": start, "length": length, "end": start + length}


def _narrow_forms(a: Args) -> tuple[str, ...]:
    forms = ["{x}.narrow({dim}, {start}, {length})", "torch.narrow({x}, {dim}, {start}, {length})"]
    if a["dim"] == 1:
        forms.append("{x}[:, {start}:{end}]")
    if a["dim"] == -1:
        forms.append("{x}[..., {start}:{end}]")
    return tuple(forms)


def _narrow_shape(shape: Shape, a: Args) -> Shape:
    axis = norm(a["dim"], len(shape))
    return tuple(a["length"] if i == axis else s for i, s in enumerate(shape))


def _slice_op(name: str, hint: str, alias: str, **fields: Any) -> OpSpec:
    """chunk and narrow: one slice along `dim` (a slice would drop one direction of a bidirectional layer)."""
    return _layout(
        name,
        hint,
        axes=lambda s, a: (norm(a["dim"], len(s)),),
        aliases=(alias,),
        constant_if=("split",),
        **fields,
    )


def _axis_arg(shape: Shape, a: Args, key: str) -> tuple[int, ...]:
    value = a[key]
    items = value if isinstance(value, (tuple, list)) else (value,)
    return tuple(norm(int(v), len(shape)) for v in items)


def _roll_args(rng: random.Random, shape: Shape) -> Args | None:
    options = axis_choices(shape, 2)
    if not options:
        return None
    axis = rng.choice(options)
    return {"shifts": rng.randint(1, shape[axis] - 1), "dims": spell_axis(rng, axis, len(shape))}


def _flip_args(rng: random.Random, shape: Shape) -> Args | None:
    options = axis_choices(shape, 2)
    if not options:
        return None
    count = 2 if len(options) >= 2 and rng.random() < 0.3 else 1
    return {"dims": tuple(spell_axis(rng, a, len(shape)) for a in sorted(rng.sample(options, count)))}


def _reorder(name: str, hint: str, forms: tuple[str, ...], make_args: ArgsFn) -> OpSpec:
    """roll and flip: reorder values along `dims`, which is the identity along a uniform axis."""
    return _layout(
        name,
        hint,
        functional=forms,
        make_args=make_args,
        constant_if=("uniform",),
        axes=lambda s, a: _axis_arg(s, a, "dims"),
    )


def _repeat_args(rng: random.Random, shape: Shape) -> Args | None:
    factor = rng.choice((2, 2, 3))
    if numel(shape) * factor > MAX_NUMEL or len(shape) < 2:
        return None
    axis = rng.randint(1, len(shape) - 1)
    return {"repeats": tuple(factor if i == axis else 1 for i in range(len(shape)))}


def _expand_args(rng: random.Random, shape: Shape) -> Args | None:
    ones = [a for a in range(1, len(shape)) if shape[a] == 1]
    if not ones:
        return None
    axis = rng.choice(ones)
    size = rng.choice((2, 4, 8))
    if numel(shape) * size > MAX_NUMEL:
        return None
    return {"sizes": tuple(size if i == axis else -1 for i in range(len(shape)))}


def _expand_shape(shape: Shape, a: Args) -> Shape:
    return tuple(s if t == -1 else t for s, t in zip(shape, a["sizes"], strict=True))


def _tri_args(rng: random.Random, shape: Shape) -> Args | None:
    if len(shape) < 3 or min(shape[-2:]) < 2:
        return None
    return {"diagonal": rng.choice((0, 0, 1, -1))}


def _tri_forms(fn: str):
    def forms(a: Args) -> tuple[str, ...]:
        out = [f"torch.{fn}({{x}}, diagonal={{diagonal}})", f"{{x}}.{fn}({{diagonal}})"]
        if a["diagonal"] == 0:
            out.append(f"torch.{fn}({{x}})")
        return tuple(out)

    return forms


def _triangle(fn: str, side: str) -> OpSpec:
    """torch.tril / torch.triu: one op but for the side of the diagonal it zeroes."""
    return _layout(
        fn,
        f"torch.{fn}(x, diagonal=0): zeroes the part {side} a diagonal of the last two axes",
        ranks=frozenset({3, 4, 5}),
        functional=_tri_forms(fn),
        make_args=_tri_args,
        effect=Effect.NONLINEAR,
        values=lambda v, a: Values(v.mean * 0.5, v.std, min(v.lo, 0.0), max(v.hi, 0.0)),
    )


# ------------------------------------------------------------------------------------- pixel/channel shuffle


def _shuffle_args(rng: random.Random, shape: Shape) -> Args | None:
    if shape[1] % 4 or shape[1] < 4:
        return None
    return {"upscale_factor": 2}


def _unshuffle_args(rng: random.Random, shape: Shape) -> Args | None:
    if shape[2] % 2 or shape[3] % 2 or shape[1] * 4 > 1024:
        return None
    return {"downscale_factor": 2}


def _channel_shuffle_args(rng: random.Random, shape: Shape) -> Args | None:
    groups = [g for g in (2, 3, 4) if shape[1] % g == 0 and g < shape[1]]
    return {"groups": rng.choice(groups)} if groups else None


def _unfold_args(rng: random.Random, shape: Shape) -> Args | None:
    k = rng.choice([k for k in (2, 3) if k <= min(shape[2:])] or [0])
    if not k:
        return None
    stride = rng.choice((1, k))
    args: Args = {"kernel_size": k, "stride": stride}
    out = _unfold_shape(shape, args)
    return args if numel(out) <= MAX_NUMEL and out[2] >= 2 else None


def _unfold_shape(shape: Shape, a: Args) -> Shape:
    k, s = a["kernel_size"], a.get("stride", 1)
    blocks = numel([conv_out(size, k, s) for size in shape[2:]])
    return (shape[0], shape[1] * k * k, blocks)


def _fold_args(rng: random.Random, shape: Shape) -> Args | None:
    ks = [k for k in (2, 3) if shape[1] % (k * k) == 0]
    pairs = factor_pairs(shape[2], 1)
    if not ks or not pairs:
        return None
    k = rng.choice(ks)
    a, b = rng.choice(pairs)
    return {"output_size": (a * k, b * k), "kernel_size": k, "stride": k}


PAIRWISE: tuple[OpSpec, ...] = (
    supporting(
        "CosineSimilarity",
        "distance",
        "nn.CosineSimilarity(dim=1): cosine similarity of two tensors along dim (that axis is removed)",
        module="nn.CosineSimilarity",
        call="{m}({x}, {y})",
        functional=(
            "F.cosine_similarity({x}, {y}, dim={dim})",
            "torch.cosine_similarity({x}, {y}, dim={dim})",
        ),
        operand=_PAIR_FULL,
        make_args=lambda rng, s: None if not axis_choices(s, 2) else {"dim": rng.choice(axis_choices(s, 2))},
        out_shape=lambda s, a: tuple(x for i, x in enumerate(s) if i != norm(a["dim"], len(s))),
        axis_map=lambda s, a: reduce_map(len(s), (a["dim"],), False),
        effect=Effect.REDUCE,
        axes=lambda s, a: (norm(a["dim"], len(s)),),
        cancels=("scale",),
        values=lambda v, a: Values(0.0, 0.3, -1.0, 1.0),
        attr="cos",
        aliases=("cosine_similarity",),
    ),
    supporting(
        "PairwiseDistance",
        "distance",
        "nn.PairwiseDistance(p=2.0, keepdim=False): ||x - y + eps||_p over the last axis",
        module="nn.PairwiseDistance",
        call="{m}({x}, {y})",
        functional=lambda a: (
            ("F.pairwise_distance({x}, {y}, keepdim=True)",)
            if a.get("keepdim")
            else ("F.pairwise_distance({x}, {y})",)
        ),
        operand=_PAIR_FULL,
        make_args=lambda rng, s: None if s[-1] < 2 else {"p": 2.0, "keepdim": rng.random() < 0.3},
        defaults={"p": 2.0, "keepdim": False},
        out_shape=lambda s, a: (*s[:-1], 1) if a.get("keepdim") else s[:-1],
        axis_map=lambda s, a: reduce_map(len(s), (len(s) - 1,), bool(a.get("keepdim"))),
        effect=Effect.REDUCE,
        axes=lambda s, a: (len(s) - 1,),
        values=lambda v, a: Values(v.rms * (2 * a["_in_shape"][-1]) ** 0.5, v.rms * 2, 0.0, float("inf")),
        attr="dist",
        aliases=("pairwise_distance",),
    ),
)

LAYOUT: tuple[OpSpec, ...] = (
    _nn_layout(
        "Flatten",
        "flatten",
        "nn.Flatten(start_dim=1, end_dim=-1): merges axes start_dim..end_dim",
        ranks=frozenset({3, 4, 5}),
        positional=("start_dim", "end_dim"),
        defaults={"start_dim": 1, "end_dim": -1},
        functional=_flatten_forms,
        make_args=_flatten_args,
        out_shape=lambda s, a: flatten_shape(s, a["start_dim"], a["end_dim"]),
        axis_map=lambda s, a: flatten_map(len(s), a["start_dim"], a["end_dim"]),
    ),
    _nn_layout(
        "Unflatten",
        "unflatten",
        "nn.Unflatten(dim, unflattened_size): splits one axis into several",
        ranks=frozenset({2, 3, 4}),
        positional=("dim", "unflattened_size"),
        functional=(
            "{x}.unflatten({dim}, {unflattened_size})",
            "torch.unflatten({x}, {dim}, {unflattened_size})",
        ),
        make_args=_unflatten_args,
        out_shape=_unflatten_shape,
        axis_map=lambda s, a: unflatten_map(len(s), a["dim"], 2),
    ),
    _reshape_op(
        "reshape",
        "x.reshape(shape) / torch.reshape(x, shape): same elements, new shape",
        ("{x}.reshape({shape})", "torch.reshape({x}, {shape})", "{x}.reshape({shape*})"),
    ),
    _reshape_op(
        "view",
        "x.view(shape): reshape without copy (needs a contiguous input)",
        ("{x}.view({shape})", "{x}.view({shape*})"),
        needs_contiguous=True,
    ),
    _layout(
        "permute",
        "x.permute(*dims): reorders the axes",
        ranks=frozenset({3, 4, 5}),
        functional=("{x}.permute({dims*})", "torch.permute({x}, {dims})", "{x}.permute({dims})"),
        make_args=_permute_args,
        out_shape=_permute_shape,
        axis_map=lambda s, a: permute_map(a["dims"]),
        aliases=("Permute",),
    ),
    _layout(
        "transpose",
        "x.transpose(dim0, dim1): swaps two axes",
        ranks=frozenset({3, 4, 5}),
        functional=_transpose_forms,
        make_args=_transpose_args,
        out_shape=lambda s, a: tuple(s[d] for d in _transpose_perm(s, a)),
        axis_map=lambda s, a: permute_map(_transpose_perm(s, a)),
        aliases=("Transpose", "swapaxes"),
    ),
    _layout(
        "unsqueeze",
        "x.unsqueeze(dim): inserts an axis of size 1",
        ranks=frozenset({1, 2, 3, 4}),
        functional=("{x}.unsqueeze({dim})", "torch.unsqueeze({x}, {dim})"),
        make_args=_unsqueeze_args,
        out_shape=lambda s, a: (*s[: a["dim"]], 1, *s[a["dim"] :]),
        axis_map=lambda s, a: insert_map(len(s), a["dim"]),
    ),
    _layout(
        "squeeze",
        "x.squeeze(dim): removes an axis of size 1",
        ranks=frozenset({2, 3, 4, 5}),
        functional=("{x}.squeeze({dim})", "torch.squeeze({x}, {dim})"),
        make_args=_squeeze_args,
        out_shape=lambda s, a: tuple(x for i, x in enumerate(s) if i != norm(a["dim"], len(s))),
        axis_map=lambda s, a: reduce_map(len(s), (a["dim"],), False),
    ),
    _layout(
        "cat",
        "torch.cat([x, y], dim): concatenates along dim (other axes equal)",
        functional=(
            "torch.cat([{x}, {y}], dim={dim})",
            "torch.cat(({x}, {y}), {dim})",
            "torch.concat([{x}, {y}], dim={dim})",
        ),
        operand=_CONCAT,
        make_args=_cat_args,
        out_shape=_cat_shape,
        facts=lambda a: ("uniform",) if a.get("_operand") == "self" else (),
        fact_axes=lambda s, a: tuple(i for i in (norm(a["dim"], len(s)),) if s[i] == 1),
        aliases=("concat", "concatenate", "Concat"),
    ),
    _layout(
        "stack",
        "torch.stack([x, y], dim): stacks along a new axis",
        ranks=frozenset({1, 2, 3, 4}),
        functional=("torch.stack([{x}, {y}], dim={dim})", "torch.stack(({x}, {y}), {dim})"),
        operand=_CONCAT,
        make_args=_stack_args,
        out_shape=lambda s, a: (*s[: a["dim"]], 2, *s[a["dim"] :]),
        axis_map=lambda s, a: insert_map(len(s), a["dim"]),
        facts=lambda a: ("uniform",) if a.get("_operand") == "self" else (),
        fact_axes=lambda s, a: (a["dim"],),
    ),
    _slice_op(
        "chunk",
        "x.chunk(chunks, dim)[i]: one of equal slices along dim",
        "split",
        functional=(
            "{x}.chunk({chunks}, dim={dim})[{index}]",
            "torch.chunk({x}, {chunks}, dim={dim})[{index}]",
        ),
        make_args=_chunk_args,
        out_shape=_chunk_shape,
    ),
    _slice_op(
        "narrow",
        "x.narrow(dim, start, length) / x[:, start:end]: a slice along dim",
        "slice",
        functional=_narrow_forms,
        make_args=_narrow_args,
        out_shape=_narrow_shape,
    ),
    _reorder(
        "roll",
        "torch.roll(x, shifts, dims): circular shift along an axis",
        ("torch.roll({x}, shifts={shifts}, dims={dims})", "{x}.roll({shifts}, {dims})"),
        _roll_args,
    ),
    _reorder(
        "flip",
        "torch.flip(x, dims): reverses the order along axes",
        ("torch.flip({x}, dims={dims})", "{x}.flip({dims})", "{x}.flip({dims*})"),
        _flip_args,
    ),
    _layout(
        "repeat",
        "x.repeat(*sizes): tiles the tensor along axes",
        functional=("{x}.repeat({repeats*})", "{x}.repeat({repeats})", "torch.tile({x}, {repeats})"),
        make_args=_repeat_args,
        out_shape=lambda s, a: tuple(x * r for x, r in zip(s, a["repeats"], strict=True)),
        facts=("uniform",),
        fact_axes=lambda s, a: tuple(i for i, r in enumerate(a["repeats"]) if r > 1 and s[i] == 1),
        aliases=("tile",),
    ),
    _layout(
        "expand",
        "x.expand(*sizes): broadcasts size-1 axes (no copy)",
        functional=("{x}.expand({sizes*})", "{x}.expand({sizes})"),
        make_args=_expand_args,
        out_shape=_expand_shape,
        facts=("uniform",),
        fact_axes=lambda s, a: tuple(i for i, t in enumerate(a["sizes"]) if t != -1),
    ),
    _triangle("tril", "above"),
    _triangle("triu", "below"),
    _nn_layout(
        "PixelShuffle",
        "pixel_shuffle",
        "nn.PixelShuffle(upscale_factor): (N, C*r^2, H, W) -> (N, C, H*r, W*r)",
        ranks=frozenset({4}),
        positional=("upscale_factor",),
        functional=("F.pixel_shuffle({x}, {upscale_factor})",),
        make_args=_shuffle_args,
        out_shape=lambda s, a: (s[0], s[1] // 4, s[2] * 2, s[3] * 2),
        axis_map=lambda s, a: [(0,), (1, 2, 3), (2,), (3,)],
        axes=lambda s, a: (1, 2, 3),
    ),
    _nn_layout(
        "PixelUnshuffle",
        "pixel_unshuffle",
        "nn.PixelUnshuffle(downscale_factor): (N, C, H*r, W*r) -> (N, C*r^2, H, W)",
        ranks=frozenset({4}),
        positional=("downscale_factor",),
        functional=("F.pixel_unshuffle({x}, {downscale_factor})",),
        make_args=_unshuffle_args,
        out_shape=lambda s, a: (s[0], s[1] * 4, s[2] // 2, s[3] // 2),
        axis_map=lambda s, a: [(0,), (1,), (1, 2), (1, 3)],
        axes=lambda s, a: (1, 2, 3),
    ),
    _nn_layout(
        "ChannelShuffle",
        "channel_shuffle",
        "nn.ChannelShuffle(groups): interleaves channel groups of (N, C, *)",
        ranks=frozenset({3, 4, 5}),
        positional=("groups",),
        make_args=_channel_shuffle_args,
    ),
    _nn_layout(
        "Unfold",
        "unfold",
        "nn.Unfold(kernel_size, stride=1): sliding blocks (N, C, H, W) -> (N, C*k*k, L)",
        ranks=frozenset({4}),
        positional=("kernel_size",),
        defaults={"stride": 1},
        functional=("F.unfold({x}, {kernel_size}, stride={stride})",),
        make_args=_unfold_args,
        out_shape=_unfold_shape,
        axis_map=lambda s, a: [(0,), (1,), (2,), (2,)],
        axes=lambda s, a: (1, 2, 3),
        aliases=("unfold", "im2col"),
    ),
    _nn_layout(
        "Fold",
        "fold",
        "nn.Fold(output_size, kernel_size, stride): blocks (N, C*k*k, L) -> (N, C, H, W)",
        ranks=frozenset({3}),
        positional=("output_size", "kernel_size"),
        defaults={"stride": 1},
        functional=("F.fold({x}, {output_size}, {kernel_size}, stride={stride})",),
        make_args=_fold_args,
        out_shape=lambda s, a: (s[0], s[1] // (a["kernel_size"] ** 2), *a["output_size"]),
        axis_map=lambda s, a: [(0,), (1,), (2, 3)],
        axes=lambda s, a: (1, 2),
        aliases=("fold", "col2im"),
    ),
    _layout(
        "Identity",
        "nn.Identity(): returns its input",
        ranks=ANY_RANK,
        module="nn.Identity",
        effect=Effect.IDENTITY,
        attr="identity",
    ),
    *PAIRWISE,
)
