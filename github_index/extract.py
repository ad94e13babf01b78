"""Extract stage: find every nn.Module subclass in a repository and write each as a standalone module file.

A class is an nn.Module when any base resolves -- through imports, aliases and base-class chains across the
repository's files -- to a subclass of `torch.nn.Module`.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cache

from github_index.closure import ClosureCache, ClosureError, build_closure
from github_index.sources import RepoInfo, iter_python_files
from github_index.symbols import External, RepoIndex, RepoSymbol, attribute_parts
from synth_modules.program import short_hash
from synth_modules.types import Category


@cache
def is_torch_module_class(qualname: str) -> bool:
    """Does `qualname` (e.g. `torch.nn.Conv2d`) name a subclass of torch.nn.Module?"""
    if not qualname.startswith("torch."):
        return False
    import torch

    parts = qualname.split(".")
    obj: object = None
    for i in range(len(parts), 0, -1):  # import the longest importable prefix, getattr the rest
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        break
    return isinstance(obj, type) and issubclass(obj, torch.nn.Module)


@dataclass
class ExtractedClass:
    """One nn.Module class found in a repository and the outcome of making it standalone."""

    id: str
    repo: str
    path: str
    class_name: str
    entry_point: str
    ok: bool
    category: str | None = None
    message: str = ""
    source: str = ""
    imports: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    num_symbols: int = 0

    def to_row(self) -> dict:
        row = asdict(self)
        row.pop("source")
        return row


class ModuleClassFinder:
    """Decides, with memoisation, which classes of a repo index are nn.Module subclasses."""

    def __init__(self, index: RepoIndex):
        self.index = index
        self._memo: dict[RepoSymbol, bool] = {}

    def is_module(self, symbol: RepoSymbol) -> bool:
        if symbol not in self._memo:
            self._memo[symbol] = False  # cycle guard
            self._memo[symbol] = self._check(symbol)
        return self._memo[symbol]

    def _check(self, symbol: RepoSymbol) -> bool:
        stmts = self.index.definition(symbol)
        module = self.index.modules[symbol.module]
        for stmt in stmts:
            if isinstance(stmt, ast.ClassDef):
                for base in stmt.bases:
                    if self._base_is_module(module.name, base):
                        return True
        target = self.index.alias_target(symbol)
        return self._symbol_is_module(target)

    def _base_is_module(self, module_name: str, base: ast.expr) -> bool:
        parts = attribute_parts(base)
        if parts is None:
            return False
        resolved, used = self.index.resolve_chain(self.index.modules[module_name], parts)
        if isinstance(resolved, External) and used < len(parts):
            resolved = External(".".join([resolved.qualname, *parts[used:]]))
        elif used < len(parts):
            return False
        return self._symbol_is_module(resolved)

    def _symbol_is_module(self, symbol: object) -> bool:
        if isinstance(symbol, External):
            return is_torch_module_class(symbol.qualname)
        if isinstance(symbol, RepoSymbol):
            return self.is_module(symbol)
        return False

    def classes(self) -> Iterator[tuple[str, RepoSymbol]]:
        """(path, symbol) for every top-level nn.Module class, in path and source order."""
        for path in sorted(self.index.by_path):
            module = self.index.by_path[path]
            if self.index.modules.get(module.name) is not module:
                continue
            seen: set[str] = set()
            for stmt in module.tree.body if module.tree else []:
                for node in _class_defs(stmt):
                    if node.name in seen:
                        continue
                    seen.add(node.name)
                    symbol = RepoSymbol(module.name, node.name)
                    if self.is_module(symbol):
                        yield path, symbol


def _class_defs(stmt: ast.stmt) -> Iterator[ast.ClassDef]:
    """Top-level classes, including those under module-level if/try blocks."""
    if isinstance(stmt, ast.ClassDef):
        yield stmt
    elif isinstance(stmt, (ast.If, ast.Try)):
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.stmt):
                yield from _class_defs(child)
        for handler in getattr(stmt, "handlers", []):
            for child in handler.body:
                yield from _class_defs(child)


def entry_point_for(repo: str, path: str, class_name: str) -> str:
    """Unique, deterministic program name: the class name plus a hash of where it lives."""
    return f"{class_name}_{short_hash(f'{repo}:{path}:{class_name}')}"


@dataclass
class RepoExtraction:
    repo: RepoInfo
    files: int
    syntax_errors: list[tuple[str, str]]
    classes: list[ExtractedClass]


def extract_repo(repo: RepoInfo) -> RepoExtraction:
    """Parse every .py file of `repo`, find its nn.Module classes and build each one's closure."""
    index = RepoIndex(list(iter_python_files(repo)))
    finder = ModuleClassFinder(index)
    cache = ClosureCache(index)
    classes: list[ExtractedClass] = []
    for path, symbol in finder.classes():
        entry = entry_point_for(repo.name, path, symbol.name)
        item = ExtractedClass(
            id=entry, repo=repo.name, path=path, class_name=symbol.name, entry_point=entry, ok=False
        )
        try:
            closure = build_closure(cache, symbol, entry)
        except ClosureError as exc:
            item.category, item.message = str(Category.EXTRACTION_FAILURE), str(exc)
        except RecursionError:
            item.category, item.message = str(Category.EXTRACTION_FAILURE), "recursion limit in closure"
        else:
            item.ok = True
            item.source = closure.source
            item.imports = closure.imports
            item.missing = closure.missing
            item.unresolved = closure.unresolved
            item.num_symbols = len(closure.symbols)
        classes.append(item)
    errors = [(m.path, m.error) for m in index.by_path.values() if m.error]
    return RepoExtraction(repo=repo, files=len(index.by_path), syntax_errors=errors, classes=classes)
