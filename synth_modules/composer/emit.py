"""Turn graph nodes into code fragments: __init__ arguments and lines, and forward expressions.

Hyper-parameters (sizes, kernel sizes, scale factors, clamp bounds, parameter shapes) become arguments of
`__init__` (KernelBench style) so `get_init_inputs()` can vary them; a size derived from an earlier layer reuses
that layer's argument name (`nn.Conv2d(out_channels, out_channels, 3)` after a first conv).
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

from operators.spec import Args, ParamSpec
from synth_modules.composer.graph import Node, OperandChoice

_PLACEHOLDER = re.compile(r"\{(\w+)(\*?)\}")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_RESERVED = {
    *keyword.kwlist,
    *dir(builtins),
    "self",
    "torch",
    "nn",
    "F",
    "math",
    "typing",
    "training",
    "forward",
    "eval",
    "train",
    "to",
    "cuda",
    "cpu",
    "float",
    "double",
    "half",
    "apply",
    "parameters",
    "modules",
    "children",
    "buffers",
    "state_dict",
    "zero_grad",
    "register_buffer",
    "register_parameter",
    "get_inputs",
    "get_init_inputs",
}
# Integer arguments that read better inline (axes, indices) than as constructor arguments.
_INLINE_INTS = {
    "dim",
    "dims",
    "start_dim",
    "end_dim",
    "dim0",
    "dim1",
    "index",
    "chunks",
    "keepdim",
    "k",
    "shifts",
}

_OPERAND_NAMES = {
    "add": ("bias", "bias_shape", "bias_value"),
    "sub": ("offset", "offset_shape", "subtract_value"),
    "mul": ("scale", "scale_shape", "scaling_factor"),
    "div": ("divisor", "divisor_shape", "divide_by"),
    "maximum": ("floor", "floor_shape", "floor_value"),
    "minimum": ("ceiling", "ceiling_shape", "ceiling_value"),
    "where": ("negative_slope", "slope_shape", "negative_slope"),
    "lerp": ("target", "target_shape", "target_value"),
    "addcmul": ("tensor1", "tensor1_shape", "tensor1_value"),
    "logaddexp": ("other", "other_shape", "other_value"),
}


def literal(value: Any) -> str:
    """Python source for a constant argument value."""
    if isinstance(value, float):
        text = repr(round(value, 6))
        return text
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def unpacked(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(literal(v) for v in value)
    return literal(value)


def fill(template: str, mapping: dict[str, str], unpack: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name, star = match.group(1), match.group(2)
        table = unpack if star else mapping
        if name not in table:
            raise KeyError(f"no value for placeholder {{{name}{star}}} in {template!r}")
        return table[name]

    return _PLACEHOLDER.sub(sub, template)


class Namer:
    """Unique, readable identifiers per namespace."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken = set(_RESERVED) | (taken or set())

    def unique(self, base: str) -> str:
        base = re.sub(r"\W", "_", base).strip("_") or "v"
        if base[0].isdigit():
            base = "v_" + base
        name = base
        k = 2
        while name in self.taken:
            name = f"{base}_{k}"
            k += 1
        self.taken.add(name)
        return name


def snake(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", text).lower()


@dataclass
class Emitter:
    """Accumulates the __init__ signature and body while nodes are emitted in forward order."""

    init_args: list[tuple[str, Any]] = field(default_factory=list)
    init_lines: list[str] = field(default_factory=list)
    arg_names: Namer = field(default_factory=Namer)
    attr_names: Namer = field(default_factory=Namer)
    idents: dict[tuple[int, str], str] = field(default_factory=dict)
    attrs: dict[tuple[int, str], str] = field(default_factory=dict)
    uses_math: bool = False

    # -------------------------------------------------------------------------------- hyper-parameters

    def hyper(self, node: Node, name: str, value: Any) -> str:
        """The __init__ argument holding `value` for (node, name), created on first use."""
        key = (node.id, name)
        if key in self.idents:
            return self.idents[key]
        source = node.derived.get(name)
        if source is not None and source in self.idents:
            self.idents[key] = self.idents[source]
            return self.idents[key]
        ident = self.arg_names.unique(name)
        self.init_args.append((ident, value))
        self.idents[key] = ident
        return ident

    def attribute_for(self, node: Node, name: str, value: Any) -> str:
        """`self.<attr>` holding an __init__ argument, for use in forward."""
        key = (node.id, "attr:" + name)
        if key not in self.attrs:
            ident = self.hyper(node, name, value)
            attr = self.attr_names.unique(ident)
            self.init_lines.append(f"self.{attr} = {ident}")
            self.attrs[key] = attr
        return f"self.{self.attrs[key]}"

    def init_value(self, node: Node, name: str, value: Any) -> str:
        """An argument as written inside __init__ (constructor call or parameter shape)."""
        if isinstance(value, (bool, str)) or value is None or name in node.literal_args:
            return literal(value)
        if isinstance(value, int) and name in _INLINE_INTS:
            return literal(value)
        if isinstance(value, (int, float, tuple)):
            return self.hyper(node, name, value)
        return literal(value)

    def forward_value(self, node: Node, name: str, value: Any) -> str:
        """An argument as written inside forward: floats via attributes, structure inline."""
        if isinstance(value, float) and not isinstance(value, bool) and name not in node.literal_args:
            return self.attribute_for(node, name, value)
        return literal(value)

    # ------------------------------------------------------------------------------------------ modules

    def module(self, node: Node) -> str:
        """Emit `self.<attr> = nn.X(...)`; return `self.<attr>`."""
        spec, args = node.spec, node.args
        visible = {k: v for k, v in args.items() if not k.startswith("_")}
        positional = list(spec.positional)
        while positional and (
            positional[-1] not in visible or spec.defaults.get(positional[-1]) == visible[positional[-1]]
        ):
            positional.pop()
        parts: list[str] = []
        used: set[str] = set()
        for name in positional:
            if name not in visible:
                break
            text = self.init_value(node, name, visible[name])
            parts.append(f"{name}={text}" if node.keywords else text)
            used.add(name)
        for name, value in visible.items():
            if name in used or (name in spec.defaults and spec.defaults[name] == value):
                continue
            parts.append(f"{name}={self.init_value(node, name, value)}")
        attr = self.attr_names.unique(spec.attr or snake(spec.name))
        self.init_lines.append(f"self.{attr} = {spec.module}({', '.join(parts)})")
        return f"self.{attr}"

    # --------------------------------------------------------------------------------------- parameters

    def parameter(self, node: Node, name: str, pspec: ParamSpec) -> str:
        values = {k: v for k, v in node.args.items() if not k.startswith("_")}
        dims = [self._shape_entry(node, entry, values) for entry in pspec.shape]
        shape_text = ", ".join(dims)
        numeric = _numeric_shape(pspec.shape, values)
        fan_in = (
            _eval(pspec.fan_in, values) if pspec.fan_in else math.prod(numeric[1:]) if len(numeric) > 1 else 1
        )
        attr = self.attr_names.unique(name)
        self.init_lines.append(f"self.{attr} = nn.Parameter({_init_expr(pspec.init, shape_text, fan_in)})")
        return f"self.{attr}"

    def _shape_entry(self, node: Node, entry: str, values: Args) -> str:
        star = entry.startswith("*")
        body = entry[1:] if star else entry

        def sub(match: re.Match[str]) -> str:
            word = match.group(0)
            if word in values:
                return self.init_value(node, word, values[word])
            return word

        text = _IDENT.sub(sub, body)
        return "*" + text if star else text

    def operand(self, node: Node, choice: OperandChoice, names: dict[int, str]) -> str:
        """Forward text of a binary op's second input."""
        attr_base, shape_base, scalar_base = _OPERAND_NAMES.get(
            node.spec.name, ("other", "other_shape", "other_value")
        )
        if choice.kind == "tensor":
            assert choice.value is not None
            return names[choice.value]
        if choice.kind == "scalar":
            assert choice.scalar is not None
            if choice.inline:
                return literal(choice.scalar)
            return self.attribute_for(node, scalar_base, float(choice.scalar))
        if choice.kind == "param":
            assert choice.param_shape is not None
            shape = choice.param_shape
            shape_text = literal(shape) if choice.inline else self.hyper(node, shape_base, shape)
            attr = self.attr_names.unique(attr_base)
            expr = _init_expr(choice.param_init, shape_text, math.prod(shape[1:]) if len(shape) > 1 else 1)
            self.init_lines.append(f"self.{attr} = nn.Parameter({expr})")
            return f"self.{attr}"
        raise ValueError(f"operand kind {choice.kind} has no text of its own")


def _eval(expr: str, values: Args) -> int:
    return int(eval(expr, {"__builtins__": {}}, dict(values)))  # our own catalog expressions only


def _numeric_shape(entries: tuple[str, ...], values: Args) -> list[int]:
    out: list[int] = []
    for entry in entries:
        if entry.startswith("*"):
            value = values[entry[1:]]
            out.extend(value if isinstance(value, (tuple, list)) else [value])
        else:
            out.append(_eval(entry, values))
    return out


def _init_expr(init: str, shape: str, fan_in: int) -> str:
    if init == "normal":
        return f"torch.randn({shape}) * {round(1.0 / math.sqrt(max(fan_in, 1)), 4)}"
    if init == "unit":
        return f"torch.randn({shape})"
    if init == "small":
        return f"torch.randn({shape}) * 0.02"
    if init == "ones_jitter":
        return f"1.0 + 0.1 * torch.randn({shape})"
    if init == "positive":
        return f"torch.rand({shape}) + 0.5"
    if init.startswith("centered:"):
        _, mean, std = init.split(":")
        return f"torch.randn({shape}) * {std} + {mean}"
    if init.startswith("const:"):
        value = float(init.split(":", 1)[1])
        return f"torch.full(({shape},), {value})"
    raise ValueError(f"unknown init {init}")
