"""Dependency closure: turn one class of a repository into a standalone, importable module source.

Everything the class needs -- helper functions, constants, base classes, referenced classes, from its own file
or other files of the repository -- is inlined in dependency order; imports of allow-listed packages are kept;
names from packages we cannot or must not import become stubs that raise ImportError only when used (so an
unused optional branch does not sink the class). Same-named definitions or aliases from different files get
distinct names, and every reference is rewritten through the AST to the name it resolved to.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
from dataclasses import dataclass, field
from functools import cache

from github_index.scopes import ScopeWalker, global_references
from github_index.symbols import BUILTIN_NAMES, External, RepoIndex, RepoModule, RepoSymbol, Symbol

# Pure-Python companions of model code that extracted modules may import (top-level package names).
ALLOWED_PACKAGES = frozenset(
    {
        "torch",
        "einops",
        "numpy",
        "math",
        "functools",
        "typing",
        "typing_extensions",
        "collections",
        "dataclasses",
        "itertools",
        "operator",
        "abc",
        "enum",
        "copy",
        "numbers",
        "warnings",
        "contextlib",
        "random",
        "string",
        "re",
        "packaging",
        "__future__",
    }
)
# Parts of allowed packages that download weights or build native code: always stubbed.
BLOCKED_MODULES = ("torch.hub", "torch.utils.model_zoo", "torch.utils.cpp_extension", "torch.distributed")

STUB_CLASS = "_MissingDependency"
_STUB_SOURCE = f'''
class {STUB_CLASS}:
    """Stands in for a name from a package extracted code may not import; fails only when used."""

    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise ImportError("missing dependency: " + self._name)

    def __getattr__(self, attr):
        raise ImportError("missing dependency: " + self._name + "." + attr)
'''


@cache
def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@cache
def _package_version(module: str) -> str:
    return str(getattr(importlib.import_module(module), "__version__", "0"))


def is_allowed(qualname: str) -> bool:
    """May extracted code import `qualname` (a module or a name inside one)?"""
    package = qualname.split(".", 1)[0]
    if package not in ALLOWED_PACKAGES:
        return False
    if any(qualname == b or qualname.startswith(b + ".") for b in BLOCKED_MODULES):
        return False
    return _installed(package)


class ClosureError(Exception):
    """The class cannot be made standalone (its message says why)."""


@dataclass
class Closure:
    """A standalone module source for one class and what went into it."""

    source: str
    entry_point: str
    symbols: list[RepoSymbol]
    imports: list[str] = field(default_factory=list)  # allow-listed external names it imports
    missing: list[str] = field(default_factory=list)  # external names stubbed out
    unresolved: list[str] = field(default_factory=list)  # global names nothing binds (dead code or bugs)

    @property
    def import_modules(self) -> list[str]:
        """Modules the source's import statements name (for a sandbox's import allow-list)."""
        return sorted({_import_line_module(q) for q in self.imports})


def _import_line_module(qualname: str) -> str:
    return qualname.rsplit(".", 1)[0] if "." in qualname else qualname


def _import_statement(qualname: str, local: str) -> str:
    if "." not in qualname:
        return f"import {qualname}" + (f" as {local}" if local != qualname else "")
    parent, attr = qualname.rsplit(".", 1)
    return f"from {parent} import {attr}" + (f" as {local}" if local != attr else "")


class ClosureCache:
    """Per-repository memo of each statement's global references and renderings (closures overlap a lot)."""

    def __init__(self, index: RepoIndex):
        self.index = index
        self.references: dict[int, list[tuple[list[str], bool]]] = {}
        self.rendered: dict[tuple, str] = {}

    def refs(self, stmt: ast.stmt) -> list[tuple[list[str], bool]]:
        key = id(stmt)
        if key not in self.references:
            self.references[key] = global_references(stmt)
        return self.references[key]


class _Builder:
    def __init__(self, cache: ClosureCache, target: RepoSymbol, entry_point: str):
        self.cache = cache
        self.index = cache.index
        self.target = target
        self.entry_point = entry_point
        self.order: list[RepoSymbol] = []
        self.externals: dict[External, str] = {}  # external -> preferred local name
        self.annotation_only: set[External] = set()
        self.unresolved: set[str] = set()
        self._state: dict[RepoSymbol, str] = {}

    def resolve(self, module_name: str, parts: list[str]) -> tuple[Symbol | None, int]:
        return self.index.resolve_chain(self.index.modules[module_name], parts)

    def visit(self, symbol: RepoSymbol) -> None:
        """Depth-first, dependencies before dependents (post-order)."""
        if symbol in self._state:
            return
        self._state[symbol] = "visiting"
        stmts = self.index.definition(symbol)
        if not stmts:
            raise ClosureError(f"no definition for {symbol.module}.{symbol.name}")
        for stmt in stmts:
            for parts, in_annotation in self.cache.refs(stmt):
                resolved, _ = self.resolve(symbol.module, parts)
                if isinstance(resolved, RepoSymbol):
                    if not in_annotation:
                        self.visit(resolved)
                elif isinstance(resolved, External):
                    if resolved not in self.externals:
                        self.externals[resolved] = parts[0]
                        self.annotation_only.add(resolved)
                    if not in_annotation:
                        self.annotation_only.discard(resolved)
                elif resolved is None and parts[0] not in BUILTIN_NAMES and not in_annotation:
                    self.unresolved.add(parts[0])
                elif isinstance(resolved, RepoModule) and not in_annotation:
                    self.unresolved.add(".".join(parts))
        self._state[symbol] = "done"
        self.order.append(symbol)

    def assign_names(self) -> dict[Symbol, str]:
        """Output names: the entry point for the target, source names elsewhere, suffixed on clashes."""
        names: dict[Symbol, str] = {self.target: self.entry_point}
        taken = {self.entry_point, STUB_CLASS}

        def claim(symbol: Symbol, preferred: str) -> None:
            name, n = preferred, 1
            while name in taken:
                name, n = f"{preferred}_{n}", n + 1
            taken.add(name)
            names[symbol] = name

        for external, local in sorted(self.externals.items(), key=lambda kv: kv[0].qualname):
            if external not in self.annotation_only:
                claim(external, local)
        for symbol in self.order:
            if symbol not in names:
                claim(symbol, symbol.name)
        return names

    def render(self) -> Closure:
        self.visit(self.target)
        names = self.assign_names()
        imports = ["from __future__ import annotations"]
        stubs: list[str] = []
        allowed: list[str] = []
        missing: list[str] = []
        for external in sorted(self.externals, key=lambda e: e.qualname):
            if external not in names:
                continue
            local = names[external]
            if is_allowed(external.qualname):
                if external.qualname != "__future__.annotations":
                    imports.append(_import_statement(external.qualname, local))
                    allowed.append(external.qualname)
            else:
                stubs.append(f"{local} = {STUB_CLASS}({external.qualname!r})")
                missing.append(external.qualname)
        body: list[str] = []
        emitted: set[int] = set()
        for symbol in self.order:
            for stmt in self.index.definition(symbol):
                if id(stmt) in emitted:
                    continue
                emitted.add(id(stmt))
                body.append(self._render_stmt(symbol.module, stmt, names))
        parts = ["\n".join(sorted(set(imports), key=lambda s: (not s.startswith("from __future__"), s)))]
        if stubs:
            parts += [_STUB_SOURCE.strip(), "\n".join(stubs)]
        parts += body
        source = "\n\n\n".join(parts) + "\n"
        try:
            compile(source, f"<{self.entry_point}>", "exec")
        except SyntaxError as exc:  # unparse of exotic syntax; should not happen on parsed input
            raise ClosureError(f"generated source does not compile: {exc}") from exc
        return Closure(
            source=source,
            entry_point=self.entry_point,
            symbols=list(self.order),
            imports=sorted(allowed),
            missing=sorted(missing),
            unresolved=sorted(self.unresolved),
        )

    def _render_stmt(self, module_name: str, stmt: ast.stmt, names: dict[Symbol, str]) -> str:
        """Source of `stmt` with references renamed; memoised on the renaming that applies to it."""
        mapping = []
        for parts, _ in self.cache.refs(stmt):
            resolved, used = self.resolve(module_name, parts)
            mapping.append((tuple(parts[:used]), names.get(resolved) if resolved is not None else None))
        defined = tuple(names.get(RepoSymbol(module_name, name)) for name in _defined_names(stmt))
        key = (id(stmt), tuple(sorted(set(mapping), key=repr)), defined)
        if key not in self.cache.rendered:
            self.cache.rendered[key] = ast.unparse(self._rewrite(module_name, stmt, names))
        return self.cache.rendered[key]

    def _rewrite(self, module_name: str, stmt: ast.stmt, names: dict[Symbol, str]) -> ast.stmt:
        node = copy.deepcopy(stmt)

        def on_ref(ref: ast.expr, parts: list[str], _ann: bool) -> ast.expr | None:
            resolved, used = self.resolve(module_name, parts)
            if (
                isinstance(resolved, External)
                and parts[used:] == ["__version__"]
                and is_allowed(resolved.qualname)
            ):
                # Version checks read a dunder the sandbox forbids; the installed version is the same value.
                return ast.copy_location(ast.Constant(_package_version(resolved.qualname)), ref)
            out = names.get(resolved) if resolved is not None else None
            if out is None or (used == 1 and out == parts[0]):
                return None
            new: ast.expr = ast.Name(id=out, ctx=ast.Load())
            for attr in parts[used:]:
                new = ast.Attribute(value=new, attr=attr, ctx=ast.Load())
            return ast.copy_location(new, ref)

        node = ScopeWalker(on_ref).walk(node)
        self._rename_definition(module_name, node, names)
        return node

    @staticmethod
    def _rename_definition(module_name: str, node: ast.AST, names: dict[Symbol, str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.name = names.get(RepoSymbol(module_name, node.name), node.name)
            return
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AnnAssign, ast.AugAssign))
            else []
        )
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    sub.id = names.get(RepoSymbol(module_name, sub.id), sub.id)


def _defined_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]


def build_closure(cache: ClosureCache | RepoIndex, target: RepoSymbol, entry_point: str) -> Closure:
    """Standalone source for `target`, renamed to `entry_point` (pass one ClosureCache for a whole repo)."""
    if isinstance(cache, RepoIndex):
        cache = ClosureCache(cache)
    return _Builder(cache, target, entry_point).render()
