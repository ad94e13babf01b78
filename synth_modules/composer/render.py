"""Assemble the program file (DESIGN.md "Program file" contract) from a composed graph."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from synth_modules.composer.constants import SizeConstants, size_constants
from synth_modules.composer.emit import Emitter, Namer, fill, unpacked
from synth_modules.composer.graph import Graph, Node


@dataclass
class RenderedProgram:
    source: str
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]


def _forward_lines(
    graph: Graph, em: Emitter, input_names: dict[int, str]
) -> tuple[list[str], dict[int, str]]:
    names = dict(input_names)
    local = Namer(set(input_names.values()))
    remaining = {vid: len(users) for vid, users in graph.uses().items()}
    outputs = set(graph.outputs)
    lines: list[str] = []
    for node in graph.nodes:
        expr = _expression(node, graph, em, names)
        reads = [node.input]
        if node.operand is not None and node.operand.kind == "tensor" and node.operand.value is not None:
            reads.append(node.operand.value)
        for vid in reads:
            remaining[vid] -= 1
        primary = node.input
        dead = remaining.get(primary, 0) == 0 and primary not in outputs
        taken = {names[v] for v, left in remaining.items() if left > 0 and v in names}
        if dead and names[primary] not in taken:
            name = names[primary]
        else:
            name = local.unique("pos" if node.spec.name == "Embedding" and "arange" in node.form else "h")
        lines.append(f"{name} = {expr}")
        names[node.output] = name
    return lines, names


def _expression(node: Node, graph: Graph, em: Emitter, names: dict[int, str]) -> str:
    spec, args = node.spec, node.args
    x = names[node.input]
    if spec.needs_contiguous and not graph.states[node.input].contiguous:
        x = f"{x}.contiguous()"
    mapping: dict[str, str] = {"x": x}
    unpack: dict[str, str] = {}
    if node.operand is not None:
        mapping["y"] = x if node.operand.kind == "self" else em.operand(node, node.operand, names)
    if node.style == "module":
        mapping["m"] = em.module(node)
    else:
        for pname, pspec in spec.param_specs(args).items():
            if pspec.optional_arg and args.get(pspec.optional_arg) is False:
                mapping[pname] = "None"
            else:
                mapping[pname] = em.parameter(node, pname, pspec)
    for name, value in args.items():
        if name.startswith("_") or name in mapping:
            continue
        if "{" + name in node.form:
            mapping[name] = em.forward_value(node, name, value)
            unpack[name] = unpacked(value)
    return fill(node.form, mapping, unpack)


def _inputs_text(graph: Graph, sizes: SizeConstants) -> str:
    parts = []
    for index, inp in enumerate(graph.inputs):
        names = sizes.input_dims[index]
        dims = ", ".join(names)
        if inp.dtype == "long":
            high = sizes.input_high[index]
            parts.append(f"torch.randint(0, {high}, ({dims}{',' if len(inp.shape) == 1 else ''}))")
        elif inp.kind == "rand":
            parts.append(f"torch.rand({dims}, dtype=dtype)")
        else:
            parts.append(f"torch.randn({dims}, dtype=dtype)")
    return "[" + ", ".join(parts) + "]"


def _init_inputs_text(em: Emitter, rng: random.Random) -> str:
    values = em.init_args
    split = len(values) if rng.random() < 0.6 else max(0, len(values) - rng.randint(1, 3))
    args = ", ".join(name for name, _ in values[:split])
    kwargs = ", ".join(f"{name!r}: {name}" for name, _ in values[split:])
    return f"[[{args}], {{{kwargs}}}]"


def render(
    graph: Graph, entry_point: str, rng: random.Random, docstring: str = "", dtype: str = "float32"
) -> RenderedProgram:
    """The program text; sizes and init arguments become module-level constants, `dtype` states its precision."""
    em = Emitter()
    input_names: dict[int, str] = {}
    for inp in graph.inputs:
        input_names[inp.value] = "x" if inp.dtype == "float" else rng.choice(("indices", "tokens", "idx"))
    forward, names = _forward_lines(graph, em, input_names)
    returns = ", ".join(names[v] for v in graph.outputs)
    params = ", ".join(["self", *(name for name, _ in em.init_args)])
    hints = rng.random() < 0.25
    signature = ", ".join(
        f"{input_names[i.value]}: torch.Tensor" if hints else input_names[i.value] for i in graph.inputs
    )
    sizes = size_constants(graph, em.init_args)
    body = [
        *sizes.lines,
        f"dtype = torch.{dtype}",
        "",
        "",
        f"class {entry_point}(nn.Module):",
        *([f'    """{docstring}"""', ""] if docstring else []),
        f"    def __init__({params}):",
        "        super().__init__()",
        *(f"        {line}" for line in em.init_lines),
        "        self.to(dtype)",
        "",
        f"    def forward(self, {signature}){' -> torch.Tensor' if hints and len(graph.outputs) == 1 else ''}:",
        *(f"        {line}" for line in forward),
        f"        return {returns}",
        "",
        "",
        "def get_inputs():",
        f"    return {_inputs_text(graph, sizes)}",
        "",
        "",
        "def get_init_inputs():",
        f"    return {_init_inputs_text(em, rng)}",
    ]
    text = "\n".join(body)
    imports = ["import torch", "import torch.nn as nn"]
    if re.search(r"\bF\.", text):
        imports.append("import torch.nn.functional as F")
    if re.search(r"\bmath\.", text):
        imports.insert(0, "import math")
    source = "\n".join(imports) + "\n\n\n" + text + "\n"
    return RenderedProgram(
        source=source,
        input_shapes=[list(i.shape) for i in graph.inputs],
        output_shapes=[list(graph.states[v].shape) for v in graph.outputs],
    )
