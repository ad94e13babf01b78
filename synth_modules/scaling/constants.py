"""Find and rewrite a program's size constants: module-level integers that get_inputs / get_init_inputs use.

Works on any program file (composer-, LLM- or GitHub-written): a constant is a top-level `name = <int>`
assignment whose name `get_inputs` or `get_init_inputs` reads, directly or through another module-level
assignment (`bias_shape = (out_channels, 1, 1)`). Its role, read from the name, decides whether and how far the
scaler may grow it; hyper-parameters that are not sizes (kernel sizes, strides, groups, heads, ...) are `fixed`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

_ROLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "fixed",
        re.compile(
            r"kernel|stride|pad|dilation|group|head|layer|k$|^k_|topk|window|pool|factor|scale|output_size|"
            r"vocab|embeddings|classes|chunk|split|shift|repeat|step|^dim\d*$|axis|eps|order|unflatten|"
            r"bins|levels|rank",
            re.IGNORECASE,
        ),
    ),
    ("batch", re.compile(r"^(batch(_size)?|bs|n_?batch|num_batch(es)?|n)$", re.IGNORECASE)),
    (
        "spatial",
        re.compile(r"height|width|depth|length|^seq|_len$|^len|^[hwdlt]$|time|spatial", re.IGNORECASE),
    ),
    (
        "feature",
        re.compile(
            r"channel|feature|hidden|embed|model|size|^dim_|_dim|^d_|^c$|^in_|^out_|units|normalized",
            re.IGNORECASE,
        ),
    ),
)


@dataclass(frozen=True)
class SizeConstant:
    name: str
    value: int
    role: str  # batch | spatial | feature | fixed
    line: int  # 1-based line of the assignment
    col: int  # column span of the value literal
    end_col: int


def role_of(name: str) -> str:
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(name):
            return role
    return "fixed"


def _names_read(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def find_size_constants(source: str) -> list[SizeConstant]:
    """The size constants of `source`, in file order (fixed-role ones included, so callers can report them)."""
    tree = ast.parse(source)
    assigns: dict[str, ast.Assign] = {}
    readers: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigns[node.targets[0].id] = node
        elif isinstance(node, ast.FunctionDef) and node.name in ("get_inputs", "get_init_inputs"):
            readers |= _names_read(node)
    used, frontier = set(), set(readers)
    while frontier:  # constants read through other module-level assignments count too
        name = frontier.pop()
        if name in used or name not in assigns:
            continue
        used.add(name)
        frontier |= _names_read(assigns[name].value)
    found = []
    for name, node in assigns.items():
        value = node.value
        if name not in used or not isinstance(value, ast.Constant) or type(value.value) is not int:
            continue
        if value.lineno != value.end_lineno:
            continue
        found.append(
            SizeConstant(
                name, value.value, role_of(name), value.lineno, value.col_offset, value.end_col_offset
            )
        )
    return sorted(found, key=lambda c: c.line)


def rewrite_constants(source: str, constants: list[SizeConstant], values: dict[str, int]) -> str:
    """`source` with each named constant's literal replaced by `values[name]` (formatting kept)."""
    lines = source.splitlines(keepends=True)
    for const in sorted(constants, key=lambda c: (c.line, -c.col)):
        if const.name not in values or values[const.name] == const.value:
            continue
        text = lines[const.line - 1]
        lines[const.line - 1] = text[: const.col] + str(int(values[const.name])) + text[const.end_col :]
    return "".join(lines)
