"""Scope-aware walk over a top-level definition: which names in it refer to module globals?

A name is global unless a parameter, assignment, import, comprehension target or nested definition binds it
in an enclosing function scope (class bodies do not enclose their methods, as in Python). Dotted names are
reported whole (`nn.Conv2d`, `utils.helper`) so a caller can resolve and rewrite the chain's prefix.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from github_index.symbols import attribute_parts

# (node, dotted parts, inside an annotation) -> replacement node, or None to keep the node.
RefCallback = Callable[[ast.expr, list[str], bool], ast.expr | None]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _params(args: ast.arguments) -> set[str]:
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return set(names)


def _stored_names(body: list[ast.stmt]) -> set[str]:
    """Names bound in a function body, not descending into nested scopes."""
    bound: set[str] = set()
    declared_global: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            stack.extend(node.decorator_list)
            continue
        if isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
        elif isinstance(node, ast.MatchAs) and node.name:
            bound.add(node.name)
        stack.extend(ast.iter_child_nodes(node))
    return bound - declared_global


class ScopeWalker:
    """Visit (and optionally replace) every global reference in a statement."""

    def __init__(self, on_ref: RefCallback):
        self.on_ref = on_ref

    def walk(self, node: ast.AST) -> ast.AST:
        return self._visit(node, frozenset(), False)

    def _visit(self, node: ast.AST, shadow: frozenset[str], ann: bool) -> ast.AST:
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            parts = attribute_parts(node)
            if parts is not None:
                if parts[0] in shadow:
                    return node
                return self.on_ref(node, parts, ann) or node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self._function(node, shadow, ann)
        if isinstance(node, ast.Lambda):
            node.args = self._arguments(node.args, shadow, ann)
            node.body = self._visit(node.body, shadow | _params(node.args), ann)
            return node
        if isinstance(node, ast.ClassDef):
            return self._class(node, shadow, ann)
        if isinstance(node, _COMPREHENSIONS):
            inner = set(shadow)
            for gen in node.generators:
                inner.update(n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name))
            return self._children(node, frozenset(inner), ann)
        if isinstance(node, ast.AnnAssign):
            node.annotation = self._visit(node.annotation, shadow, True)
            node.target = self._visit(node.target, shadow, ann)
            if node.value is not None:
                node.value = self._visit(node.value, shadow, ann)
            return node
        return self._children(node, shadow, ann)

    def _children(self, node: ast.AST, shadow: frozenset[str], ann: bool) -> ast.AST:
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(
                    node,
                    name,
                    [self._visit(v, shadow, ann) if isinstance(v, ast.AST) else v for v in value],
                )
            elif isinstance(value, ast.AST):
                setattr(node, name, self._visit(value, shadow, ann))
        return node

    def _arguments(self, args: ast.arguments, shadow: frozenset[str], ann: bool) -> ast.arguments:
        args.defaults = [self._visit(d, shadow, ann) for d in args.defaults]
        args.kw_defaults = [None if d is None else self._visit(d, shadow, ann) for d in args.kw_defaults]
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None and arg.annotation is not None:
                arg.annotation = self._visit(arg.annotation, shadow, True)
        return args

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, shadow: frozenset[str], ann: bool):
        node.decorator_list = [self._visit(d, shadow, ann) for d in node.decorator_list]
        node.args = self._arguments(node.args, shadow, ann)
        if node.returns is not None:
            node.returns = self._visit(node.returns, shadow, True)
        inner = shadow | _params(node.args) | _stored_names(node.body)
        node.body = [self._visit(stmt, frozenset(inner), ann) for stmt in node.body]
        return node

    def _class(self, node: ast.ClassDef, shadow: frozenset[str], ann: bool) -> ast.ClassDef:
        node.decorator_list = [self._visit(d, shadow, ann) for d in node.decorator_list]
        node.bases = [self._visit(b, shadow, ann) for b in node.bases]
        node.keywords = [self._visit(k, shadow, ann) for k in node.keywords]
        class_locals = shadow | _stored_names(node.body)
        body = []
        for stmt in node.body:
            # Methods see the enclosing function scopes, never the class body's names.
            scope = shadow if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) else class_locals
            body.append(self._visit(stmt, frozenset(scope), ann))
        node.body = body
        return node


def global_references(node: ast.AST) -> list[tuple[list[str], bool]]:
    """All (dotted parts, in-annotation) global references in `node` (not modified)."""
    found: list[tuple[list[str], bool]] = []

    def record(_node: ast.expr, parts: list[str], ann: bool) -> None:
        found.append((parts, ann))

    ScopeWalker(record).walk(node)
    return found
