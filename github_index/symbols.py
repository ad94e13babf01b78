"""A repository's module index and name resolution: which definition does a name in a file refer to?

Resolution follows imports (absolute, relative, aliased, re-exported through `__init__`, star imports) and
simple alias assignments (`Module = nn.Module`) across the repository's files, so two same-named classes in
different files stay distinct and `F` means whatever *that* file bound to `F`.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

BUILTIN_NAMES = frozenset(dir(builtins)) | {"__file__", "__name__", "__class__"}


@dataclass(frozen=True)
class RepoSymbol:
    """A top-level definition (class, function, assignment) in one of the repository's files."""

    module: str
    name: str


@dataclass(frozen=True)
class RepoModule:
    """A repository file or package used as a namespace (`from . import utils`)."""

    module: str


@dataclass(frozen=True)
class External:
    """Something outside the repository, by qualified name (`torch.nn.Module`, `einops.rearrange`)."""

    qualname: str

    @property
    def package(self) -> str:
        return self.qualname.split(".", 1)[0]


Symbol = RepoSymbol | RepoModule | External


@dataclass(frozen=True)
class ImportBinding:
    """What an import statement bound a local name to. `attr` is None for `import x.y [as z]`."""

    module: str  # absolute module name (relative imports already resolved)
    attr: str | None = None


@dataclass
class ModuleFile:
    """One parsed `.py` file and its top-level bindings."""

    path: str
    name: str
    source: str
    tree: ast.Module | None = None
    error: str = ""
    defs: dict[str, list[ast.stmt]] = field(default_factory=dict)
    imports: dict[str, ImportBinding] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")


def module_name_for(path: str) -> str:
    """`pkg/sub/mod.py` -> `pkg.sub.mod`; `pkg/__init__.py` -> `pkg`."""
    parts = path[:-3].split("/") if path.endswith(".py") else path.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(p for p in parts if p)


def _absolute(module: ModuleFile, target: str | None, level: int) -> str:
    if level == 0:
        return target or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *([target] if target else [])])


def _bound_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for elt in target.elts for name in _bound_names(elt)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


def _collect_bindings(module: ModuleFile, body: list[ast.stmt]) -> None:
    """Record top-level definitions and imports, descending into module-level if/try blocks."""
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            module.defs.setdefault(stmt.name, []).append(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
                continue
            for target in targets:
                for name in _bound_names(target):
                    module.defs.setdefault(name, []).append(stmt)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    module.imports[alias.asname] = ImportBinding(alias.name)
                else:
                    root = alias.name.split(".")[0]
                    module.imports[root] = ImportBinding(root)
        elif isinstance(stmt, ast.ImportFrom):
            source = _absolute(module, stmt.module, stmt.level)
            for alias in stmt.names:
                if alias.name == "*":
                    module.star_imports.append(source)
                else:
                    module.imports[alias.asname or alias.name] = ImportBinding(source, alias.name)
        elif isinstance(stmt, ast.If):
            if _is_main_guard(stmt):
                continue
            _collect_bindings(module, stmt.body)
            _collect_bindings(module, stmt.orelse)
        elif isinstance(stmt, ast.Try):
            # `try: import fast_thing; except ImportError: fast_thing = None` -- the body wins when it resolves.
            _collect_bindings(module, stmt.body)
            fallback = ModuleFile(module.path, module.name, "")
            for handler in stmt.handlers:
                _collect_bindings(fallback, handler.body)
            for name, stmts in fallback.defs.items():
                if name not in module.defs and name not in module.imports:
                    module.defs[name] = stmts
            for name, binding in fallback.imports.items():
                if name not in module.defs and name not in module.imports:
                    module.imports[name] = binding


def _is_main_guard(stmt: ast.If) -> bool:
    return "__main__" in ast.unparse(stmt.test) and "__name__" in ast.unparse(stmt.test)


def parse_module(path: str, source: str) -> ModuleFile:
    module = ModuleFile(path=path, name=module_name_for(path), source=source)
    try:
        module.tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        module.error = f"{type(exc).__name__}: {exc}"
        return module
    _collect_bindings(module, module.tree.body)
    return module


class RepoIndex:
    """All parsed files of one repository, with name resolution across them."""

    def __init__(self, files: list[tuple[str, str]]):
        self.modules: dict[str, ModuleFile] = {}
        self.by_path: dict[str, ModuleFile] = {}
        for path, source in files:
            module = parse_module(path, source)
            self.by_path[path] = module
            # The first file wins a name clash (`a/x.py` vs `a/x/__init__.py` cannot both exist in one tree).
            self.modules.setdefault(module.name, module)
        self._suffix_cache: dict[str, ModuleFile | None] = {}

    def find_module(self, dotted: str) -> ModuleFile | None:
        """A repo module by absolute name; falls back to a suffix match for `src/`-style layouts."""
        if not dotted:
            return None
        if dotted in self.modules:
            return self.modules[dotted]
        if dotted not in self._suffix_cache:
            matches = [m for name, m in self.modules.items() if name.endswith("." + dotted)]
            matches.sort(key=lambda m: (len(m.name), m.name))
            self._suffix_cache[dotted] = matches[0] if matches else None
        return self._suffix_cache[dotted]

    def resolve_name(self, module: ModuleFile, name: str, _depth: int = 0) -> Symbol | None:
        """What a global `name` in `module` refers to, or None when nothing binds it."""
        if _depth > 30:
            return None
        if name in module.defs:
            return RepoSymbol(module.name, name)
        binding = module.imports.get(name)
        if binding is not None:
            return self._resolve_binding(binding, _depth)
        for star in module.star_imports:
            target = self.find_module(star)
            if target is not None and target is not module:
                found = self.resolve_name(target, name, _depth + 1)
                if found is not None:
                    return found
        return None

    def _resolve_binding(self, binding: ImportBinding, depth: int) -> Symbol | None:
        target = self.find_module(binding.module)
        if binding.attr is None:
            return RepoModule(target.name) if target is not None else External(binding.module)
        if target is None:
            return External(f"{binding.module}.{binding.attr}")
        found = self.resolve_name(target, binding.attr, depth + 1)
        if found is not None:
            return found
        sub = self.find_module(f"{target.name}.{binding.attr}")
        if sub is not None:
            return RepoModule(sub.name)
        return None

    def resolve_chain(self, module: ModuleFile, parts: list[str]) -> tuple[Symbol | None, int]:
        """Resolve `a.b.c` in `module`; returns the symbol and how many parts it consumed.

        Walking stops at a repo definition or an external name; later parts are attribute accesses on it.
        """
        symbol = self.resolve_name(module, parts[0])
        used = 1
        while used < len(parts) and isinstance(symbol, RepoModule):
            namespace = self.modules[symbol.module]
            nxt = self.resolve_name(namespace, parts[used])
            if nxt is None:
                sub = self.find_module(f"{namespace.name}.{parts[used]}")
                nxt = RepoModule(sub.name) if sub is not None else None
            if nxt is None:
                return None, used
            symbol = nxt
            used += 1
        return symbol, used

    def definition(self, symbol: RepoSymbol) -> list[ast.stmt]:
        return self.modules[symbol.module].defs.get(symbol.name, [])

    def alias_target(self, symbol: RepoSymbol) -> Symbol | None:
        """For `Name = other.thing` style aliases, what the right-hand side resolves to."""
        stmts = self.definition(symbol)
        if len(stmts) != 1 or not isinstance(stmts[0], ast.Assign):
            return None
        value = stmts[0].value
        parts = attribute_parts(value)
        if parts is None:
            return None
        resolved, used = self.resolve_chain(self.modules[symbol.module], parts)
        if isinstance(resolved, External) and used < len(parts):
            return External(".".join([resolved.qualname, *parts[used:]]))
        return resolved if used == len(parts) else None


def attribute_parts(node: ast.expr) -> list[str] | None:
    """`a.b.c` -> ['a', 'b', 'c']; None for anything that is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]
