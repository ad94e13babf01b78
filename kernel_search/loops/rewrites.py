"""Source rewrites of Inductor's code that the offline proposer may try beside launch parameters.

Each rewrite is a boolean parameter added to a task space (off by default, so the default config is still the
code as captured); the evaluator verifies every rewritten candidate like any other. Today: dropping the
`assert_size_stride` guards Inductor emits for every graph input (host-side checks on each call; the task's
input shapes are fixed, and a wrong shape still fails in the kernels' own indexing or in the evaluator).
"""

from __future__ import annotations

import ast
from typing import Any

from kernel_search.spaces.base import TaskSpace
from kernel_search.tuning.search_space import Config

DROP_SIZE_ASSERTS = "rewrite.drop_size_asserts"
_GUARDS = frozenset({"assert_size_stride", "assert_alignment"})


def drop_size_asserts(source: str) -> str:
    """The source without top-level-statement calls to Inductor's size/stride/alignment guards."""
    tree = ast.parse(source)

    class Dropper(ast.NodeTransformer):
        def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
            call = node.value
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in _GUARDS:
                return None
            return node

    tree = ast.fix_missing_locations(Dropper().visit(tree))
    for node in ast.walk(tree):  # a function left empty by the removal gets a `pass`
        if isinstance(node, ast.FunctionDef) and not node.body:
            node.body = [ast.Pass()]
    return ast.unparse(tree) + "\n"


class RewriteSpace(TaskSpace):
    """`base` plus boolean rewrite parameters, applied to the base's rendered source."""

    def __init__(self, base: TaskSpace):
        self.base = base
        self.name = f"{base.name}+rewrites"

    def parameters(self) -> dict[str, list[Any]]:
        return {**self.base.parameters(), DROP_SIZE_ASSERTS: [False, True]}

    def _base_config(self, config: Config) -> Config:
        return {k: v for k, v in config.items() if k != DROP_SIZE_ASSERTS}

    def is_valid(self, config: Config) -> bool:
        return self.base.is_valid(self._base_config(config))

    def render(self, config: Config) -> str:
        source = self.base.render(self._base_config(config))
        return drop_size_asserts(source) if config.get(DROP_SIZE_ASSERTS) else source
