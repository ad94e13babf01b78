"""Module-level size constants (KernelBench style) for a composed program.

Every `__init__` argument becomes a module-level constant of the same name (`out_channels = 16`) and
`get_init_inputs()` passes the names; every input dimension becomes a constant too (`batch_size`, `height`,
...). An input dimension that feeds a layer's size argument of the same value shares that argument's constant
(`x = torch.randn(batch_size, in_channels, ...)` with `nn.Conv2d(in_channels, ...)`), and a parameter shape
that repeats a size constant names it (`bias_shape = (out_channels, 1, 1)`). Sizes linked this way move
together when `synth_modules.scaling` rescales the program; the scaler re-checks every rescaled program, so a
link the composer did not see costs only that dimension's growth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synth_modules.composer.emit import Namer, literal
from synth_modules.composer.graph import Graph

# Argument names that are the size of the axis they consume, by input position.
_CHANNEL_ARGS = ("in_channels", "num_features", "num_channels", "channels", "in1_features", "in2_features")
_FEATURE_ARGS = (
    "in_features",
    "input_size",
    "embed_dim",
    "d_model",
    "normalized_shape",
    "num_features",
    "in1_features",
    "in2_features",
)
_DEFAULT_NAMES = {
    1: ("features",),
    2: ("batch_size", "features"),
    3: ("batch_size", "channels", "length"),
    4: ("batch_size", "channels", "height", "width"),
    5: ("batch_size", "channels", "depth", "height", "width"),
}
_LONG_NAMES = {1: ("seq_len",), 2: ("batch_size", "seq_len")}
_SHAPE_SUFFIX = "_shape"


@dataclass
class SizeConstants:
    lines: list[str] = field(default_factory=list)  # `name = value` lines, in order
    input_dims: list[list[str]] = field(default_factory=list)  # per program input, the name of each dim
    input_high: list[str] = field(default_factory=list)  # per integer input, its exclusive upper bound


def _default_name(rank: int, position: int, long: bool) -> str:
    names = (_LONG_NAMES if long else _DEFAULT_NAMES).get(rank)
    if names is None:
        return f"dim{position}"
    return names[position]


def _link_candidates(rank: int, position: int) -> tuple[str, ...]:
    if rank >= 2 and position == 0:
        return ()  # the batch axis is never a layer's size
    if rank >= 3 and position == 1:
        return _CHANNEL_ARGS + _FEATURE_ARGS
    if position == rank - 1:
        return _FEATURE_ARGS
    return ()


def size_constants(graph: Graph, init_args: list[tuple[str, Any]]) -> SizeConstants:
    """Constants for `init_args` (name, value) and the graph's input dimensions."""
    out = SizeConstants()
    ints = {
        name: value for name, value in init_args if isinstance(value, int) and not isinstance(value, bool)
    }
    names = Namer({name for name, _ in init_args} | {"dtype"})
    linked: set[str] = set()
    aliases: dict[str, str] = {}  # init argument -> the constant it equals (the same input axis feeds both)
    input_lines: list[str] = []
    first_dims: list[tuple[int, str]] = []  # (value, name) per position of the first input
    for index, inp in enumerate(graph.inputs):
        long = inp.dtype == "long"
        dims: list[str] = []
        for position, size in enumerate(inp.shape):
            if index > 0 and position < len(first_dims) and first_dims[position][0] == size:
                dims.append(first_dims[position][1])  # a second input shares the first one's sizes
                continue
            arg = next(
                (
                    a
                    for a in _link_candidates(len(inp.shape), position)
                    if not long and a in ints and ints[a] == size and a not in linked
                ),
                None,
            )
            if arg is not None:
                linked.add(arg)
                dims.append(arg)
                for other in _link_candidates(len(inp.shape), position):  # bilinear(x, x): in2 == in1
                    if other in ints and ints[other] == size and other not in linked:
                        linked.add(other)
                        aliases[other] = arg
                continue
            name = names.unique(_default_name(len(inp.shape), position, long))
            input_lines.append(f"{name} = {size}")
            dims.append(name)
        if index == 0:
            first_dims = list(zip(inp.shape, dims, strict=True))
        out.input_dims.append(dims)
        if long:
            if ints.get("num_embeddings") == inp.high:
                out.input_high.append("num_embeddings")
            else:
                name = names.unique("vocab_size")
                input_lines.append(f"{name} = {inp.high}")
                out.input_high.append(name)
        else:
            out.input_high.append("")
    size_names = {v: k for k, v in reversed(list(ints.items())) if v > 1}
    # plain values, then aliases of them, then parameter shapes (which may name either)
    ordered = sorted(init_args, key=lambda item: (isinstance(item[1], tuple), item[0] in aliases))
    arg_lines = [
        f"{name} = {aliases[name] if name in aliases else _value_text(name, value, size_names)}"
        for name, value in ordered
    ]
    out.lines = [*input_lines, *arg_lines]
    return out


def _value_text(name: str, value: Any, size_names: dict[int, str]) -> str:
    """A parameter shape names the size constants it repeats; everything else is a literal."""
    if name.endswith(_SHAPE_SUFFIX) and isinstance(value, tuple):
        parts = [size_names.get(v, literal(v)) if isinstance(v, int) else literal(v) for v in value]
        inner = ", ".join(parts)
        return f"({inner},)" if len(parts) == 1 else f"({inner})"
    return literal(value)
