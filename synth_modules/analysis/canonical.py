"""A program's canonical form: what stays when names, docstrings, comments and formatting are taken away.

Two programs that differ only in identifiers (class name included), import aliases, docstrings, comments, type
annotations or layout have the same canonical source, hence the same `canonical_hash`; `code_shingles` hashes the
canonical token stream for near-duplicate detection.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize

import numpy as np

# Names every program shares by contract; keeping them readable costs nothing.
_KEEP = frozenset({"self", "forward", "__init__", "get_inputs", "get_init_inputs", "super"})
_SKIP_TOKENS = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER})


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local alias -> full dotted path (`F` -> `torch.nn.functional`, `relu` -> `torch.nn.functional.relu`)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(path: str, ctx: ast.expr_context) -> ast.expr:
    parts = path.split(".")
    node: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        node = ast.Attribute(node, part, ast.Load())
    node.ctx = ctx
    return node


def _bound_names(tree: ast.Module, aliases: dict[str, str]) -> dict[str, str]:
    """Every identifier the file binds (classes, functions, arguments, locals, self attributes), in order of
    first appearance, mapped to v0, v1, ..."""
    order: dict[str, None] = {}

    def bind(name: str) -> None:
        if name not in _KEEP and not name.startswith("__") and name not in aliases:
            order.setdefault(name, None)

    for node in _walk_in_order(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bind(node.name)
        elif isinstance(node, ast.arg):
            bind(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bind(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            bind(node.attr)
    return {name: f"v{position}" for position, name in enumerate(order)}


def _walk_in_order(node: ast.AST):
    """Depth-first, source-order traversal (ast.walk is breadth-first)."""
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _walk_in_order(child)


class _Canonicalizer(ast.NodeTransformer):
    def __init__(self, names: dict[str, str], aliases: dict[str, str], local_callables: set[str]):
        self.names = names
        self.aliases = aliases
        self.local_callables = local_callables

    def visit_Import(self, node: ast.Import) -> None:
        return None

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return None

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None  # docstrings and bare string statements
        return self.generic_visit(node)

    def _body(self, node: ast.AST) -> ast.AST:
        self.generic_visit(node)
        if not node.body:  # the docstring was the whole body
            node.body = [ast.Pass()]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.names.get(node.name, node.name)
        node.returns = None
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        return self._body(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.names.get(node.name, node.name)
        return self._body(node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.names.get(node.arg, node.arg)
        node.annotation = None
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return None
        return self.visit(ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno))

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.names:
            node.id = self.names[node.id]
            return node
        if node.id in self.aliases:
            return _dotted(self.aliases[node.id], node.ctx)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            node.attr = self.names.get(node.attr, node.attr)
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        target = func.id if isinstance(func, ast.Name) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            target = func.attr
        if target in self.local_callables:
            for keyword in node.keywords:
                if keyword.arg is not None:
                    keyword.arg = self.names.get(keyword.arg, keyword.arg)
        self.generic_visit(node)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        # get_init_inputs() kwargs spell __init__ parameter names as strings
        if isinstance(node.value, str) and node.value in self.names:
            node.value = self.names[node.value]
        return node


def canonical_source(source: str) -> str:
    """The canonical text of a program (raises SyntaxError if it does not parse)."""
    tree = ast.parse(source)
    aliases = _import_aliases(tree)
    names = _bound_names(tree, aliases)
    local_callables = {
        node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }
    canonical = _Canonicalizer(names, aliases, local_callables).visit(tree)
    ast.fix_missing_locations(canonical)
    return ast.unparse(canonical)


def _canonical_or_raw(source: str) -> str:
    try:
        return canonical_source(source)
    except SyntaxError:
        return source


def canonical_hash(source: str) -> str:
    """sha256 of the canonical form; identical for programs equal up to naming, docs and layout."""
    return hash_canonical(_canonical_or_raw(source))


def hash_canonical(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_tokens(source: str) -> list[str]:
    """Token strings of the canonical form (structure tokens kept, comments and blank lines dropped)."""
    return tokens_of(_canonical_or_raw(source))


def tokens_of(text: str) -> list[str]:
    tokens: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in _SKIP_TOKENS:
                continue
            tokens.append(tokenize.tok_name[token.type] if not token.string.strip() else token.string)
    except (tokenize.TokenError, IndentationError):
        tokens = text.split()
    return tokens


def code_shingles(source: str, size: int = 5) -> np.ndarray:
    """Sorted unique 32-bit hashes of the canonical token `size`-grams (the set near-dup Jaccard is over)."""
    return shingles_of(tokens_of(_canonical_or_raw(source)), size)


def shingles_of(tokens: list[str], size: int = 5) -> np.ndarray:
    if len(tokens) < size:
        grams = [" ".join(tokens)]
    else:
        grams = [" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]
    hashes = {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") for g in grams}
    return np.array(sorted(hashes), dtype=np.uint32)


def fingerprint_parts(source: str, size: int = 5) -> tuple[str, np.ndarray]:
    """(canonical hash, shingles) with one canonicalization."""
    text = _canonical_or_raw(source)
    return hash_canonical(text), shingles_of(tokens_of(text), size)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique hash arrays."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)
