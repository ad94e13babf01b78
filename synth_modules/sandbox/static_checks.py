"""Static safety and structure checks on a program's source, run in the parent before any sandbox work.

They are the first line of defence (the process sandbox is the second) and cheap: one parse and one AST walk.
A program may only import the contract's allow-list, may not reach the interpreter's escape hatches
(exec/eval/open/getattr/dunder attributes/frames), may not name modules such as `os` even as attributes of
torch (`torch.os`), may not touch torch's private or host-reaching API (`torch._C`, `torch.ops`,
`torch.load`, `torch.hub`, ...), and may not patch modules it imports.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from synth_modules.program import find_module_classes
from synth_modules.types import Category, Stage, Verdict

# The program file contract's import allow-list (DESIGN.md), plus `__future__` which changes nothing at runtime.
ALLOWED_IMPORTS = frozenset({"torch", "torch.nn", "torch.nn.functional", "math", "typing", "__future__"})
STAR_IMPORT_OK = frozenset({"math", "typing", "__future__"})

# Modules that reach the host (files, processes, network, interpreter internals). Importing them is unsafe and
# `extra_allowed_imports` cannot lift that; importing any other module off the allow-list is an import_error.
DANGEROUS_MODULES = frozenset(
    {
        "os", "sys", "subprocess", "socket", "ctypes", "pickle", "cPickle", "dill", "joblib", "shutil",
        "importlib", "builtins", "__builtin__", "multiprocessing", "threading", "_thread", "posix", "nt", "pty",
        "marshal", "inspect", "gc", "resource", "tempfile", "pathlib", "urllib", "urllib3", "http", "requests",
        "glob", "fcntl", "mmap", "asyncio", "io", "codecs", "zipfile", "tarfile", "ftplib", "smtplib",
        "telnetlib", "ssl", "webbrowser", "sysconfig", "site", "runpy", "code", "codeop", "pdb", "linecache",
        "fileinput", "dbm", "shelve", "sqlite3", "signal", "faulthandler", "atexit", "types", "copyreg",
        "zipimport", "pkgutil", "imp", "selectors", "termios", "tty", "pwd", "grp", "spwd", "crypt", "xmlrpc",
        "socketserver", "concurrent", "getpass", "platform", "posixpath", "ntpath", "genericpath",
        "pickletools", "shlex",
    }
)  # fmt: skip

# Module names that are escape routes when read as an attribute of anything (`torch.os`, `F.np`, `x.sys`).
MODULE_ATTRIBUTES = frozenset(
    {
        "os", "sys", "subprocess", "socket", "ctypes", "pickle", "shutil", "importlib", "builtins",
        "multiprocessing", "threading", "_thread", "posix", "pty", "marshal", "inspect", "gc", "tempfile",
        "pathlib", "glob", "codecs", "linecache", "runpy", "sysconfig", "np", "numpy", "ctypeslib",
    }
)  # fmt: skip

# Any non-torch module re-exported by an imported module (`torch.platform`, `typing.types`, `F.dataclasses`):
# banned when reached through a chain rooted at an imported module.
CHAIN_MODULE_ATTRIBUTES = DANGEROUS_MODULES | MODULE_ATTRIBUTES | frozenset(
    {
        "functools", "textwrap", "warnings", "dataclasses", "collections", "contextlib", "operator",
        "stdlib_re", "re", "enum", "itertools", "uuid", "weakref",
    }
)  # fmt: skip

# Attribute names that are escape hatches whatever object they are read from.
BANNED_ATTRIBUTES = frozenset(
    {
        # interpreter frames and code objects (reach globals and builtins without dunders)
        "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next",
        "f_globals", "f_locals", "f_back", "f_builtins", "f_code", "co_code", "func_globals", "func_code",
        # process and environment access
        "environ", "getenv", "putenv", "system", "popen", "spawnl", "spawnv", "spawnve", "execv", "execve",
        "execl", "execvp", "fork", "forkpty", "kill", "killpg", "_exit", "setuid",
        # files, serialization and native code through torch / numpy
        "load", "save", "from_file", "hub", "cpp_extension", "serialization", "library", "load_library",
        "share_memory_", "tofile", "fromfile", "memmap", "loadtxt", "savetxt", "savez", "savez_compressed",
        "genfromtxt", "fromregex", "DataSource", "open_memmap", "distributed", "package", "model_zoo",
        "load_url", "load_state_dict_from_url", "download_url_to_file",
    }
)  # fmt: skip

# Attribute names banned only inside chains rooted at an imported module (`torch.ops`, `torch.classes`):
# common enough as user attribute names (`self.ops`) that banning them everywhere would reject real code.
BANNED_MODULE_ATTRIBUTES = frozenset({"ops", "classes", "utils", "jit"})
# torch.utils is reachable only as torch.utils.checkpoint (activation checkpointing in real models), and
# torch.jit only for its annotations (TorchScript decorators in real models).
_OK_NEXT = {
    "utils": frozenset({"checkpoint"}),
    "jit": frozenset({"script", "ignore", "unused", "is_scripting", "is_tracing", "annotate", "Final"}),
}

BANNED_CALLABLES = frozenset(
    {
        "exec", "eval", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
        "vars", "breakpoint", "input", "exit", "quit", "help", "memoryview", "__builtins__", "__loader__",
        "__spec__", "copyright", "credits", "license",
    }
)  # fmt: skip

ALLOWED_DUNDER_ATTRIBUTES = frozenset({"__init__", "__name__", "__doc__"})
ALLOWED_DUNDER_NAMES = frozenset({"__name__", "__doc__"})
ALLOWED_DUNDER_STRINGS = frozenset({"__main__"})
_DUNDER = re.compile(r"__[A-Za-z0-9_]+__")

# `from torch import nn` binds a module: knowing which names are modules lets the checker forbid passing a
# module object around as a value (which would hide later attribute accesses from this walk).
_KNOWN_SUBMODULES = frozenset(
    {
        "nn", "functional", "init", "utils", "jit", "fft", "linalg", "special", "autograd", "cuda", "backends",
        "distributions", "sparse", "random", "testing", "overrides", "quantization", "ao", "modules",
        "parameter", "parametrize", "parametrizations", "rnn", "fx", "onnx",
    }
)  # fmt: skip
_MAX_REPORTED = 3


@dataclass(frozen=True)
class Finding:
    category: Category
    line: int
    message: str

    def render(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _chain(node: ast.expr) -> tuple[ast.expr, list[str]]:
    """`torch.nn.functional.relu` -> (Name torch, ["nn", "functional", "relu"])."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    attrs.reverse()
    return node, attrs


def _module_allowed(module: str, allowed: frozenset[str]) -> bool:
    """Exact contract modules; an extra allowed module also admits its submodules (`einops.layers`)."""
    return module in allowed or any(module.startswith(a + ".") for a in allowed - ALLOWED_IMPORTS)


def _dangerous_module(module: str) -> bool:
    parts = module.split(".")
    if any(".".join(parts[: i + 1]) in DANGEROUS_MODULES for i in range(len(parts))):
        return True
    if any(p.startswith("_") for p in parts if p != "__future__"):
        return True
    if parts[0] != "torch":
        return False
    for i, part in enumerate(parts[1:], start=1):
        following = parts[i + 1] if i + 1 < len(parts) else None
        if part in _OK_NEXT and following in _OK_NEXT[part]:
            continue
        if part in BANNED_ATTRIBUTES or part in BANNED_MODULE_ATTRIBUTES or part in CHAIN_MODULE_ATTRIBUTES:
            return True
    return False


class _SafetyScan:
    """Collects unsafe-code and import findings over one parsed program."""

    def __init__(self, tree: ast.Module, allowed_imports: frozenset[str]):
        self.tree = tree
        self.allowed = allowed_imports
        self.findings: list[Finding] = []
        self.module_names: set[str] = set()  # names bound to module objects by imports
        self.chain_roots: set[str] = set()  # imported names plus names assigned from module-rooted chains
        self._chain_heads: set[int] = set()  # ids of Name nodes at the root of an Attribute chain
        self._inner: set[int] = set()  # ids of Attribute nodes inside a longer chain

    def add(self, category: Category, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(category, getattr(node, "lineno", 0), message))

    def run(self) -> list[Finding]:
        nodes = list(ast.walk(self.tree))
        # Imports and aliases first, so chain roots are known wherever in the file a module is used.
        for node in nodes:
            if isinstance(node, ast.Import):
                self._import(node)
            elif isinstance(node, ast.ImportFrom):
                self._import_from(node)
        self._collect_aliases(nodes)
        # ast.walk is breadth-first: an outer Attribute is seen before the chain inside it.
        for node in nodes:
            if isinstance(node, ast.Attribute):
                self._attribute(node)
            elif isinstance(node, ast.Name):
                self._name(node)
            elif isinstance(node, ast.Constant):
                self._constant(node)
        self._module_values(nodes)
        return self.findings

    # --- imports -----------------------------------------------------------------------------------------
    def _check_module(self, node: ast.AST, module: str) -> bool:
        if _dangerous_module(module):
            self.add(Category.UNSAFE_CODE, node, f"import of unsafe module '{module}'")
            return False
        if not _module_allowed(module, self.allowed):
            self.add(Category.IMPORT_ERROR, node, f"import of '{module}' is not on the allow-list")
            return False
        return True

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._check_module(node, alias.name):
                bound = alias.asname or alias.name.split(".")[0]
                self.module_names.add(bound)
                self.chain_roots.add(bound)

    def _import_from(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.add(
                Category.IMPORT_ERROR, node, f"relative import '{'.' * node.level}{module}' is not allowed"
            )
            return
        if not self._check_module(node, module):
            return
        for alias in node.names:
            name = alias.name
            if name == "*":
                if module not in STAR_IMPORT_OK:
                    self.add(Category.IMPORT_ERROR, node, f"star import from '{module}' is not allowed")
                continue
            if module == "__future__":
                continue
            if name.startswith("_"):
                self.add(Category.UNSAFE_CODE, node, f"import of private name '{module}.{name}'")
            elif (
                name in CHAIN_MODULE_ATTRIBUTES
                or name in BANNED_ATTRIBUTES
                or name in BANNED_MODULE_ATTRIBUTES
                or name in BANNED_CALLABLES
            ):
                self.add(Category.UNSAFE_CODE, node, f"import of unsafe name '{module}.{name}'")
            bound = alias.asname or name
            self.chain_roots.add(bound)
            if name in _KNOWN_SUBMODULES:
                self.module_names.add(bound)

    def _collect_aliases(self, nodes: list[ast.AST]) -> None:
        """`t = torch` is refused below; `j = torch.jit` makes `j` a chain root too, to a fixed point."""
        while True:
            before = len(self.chain_roots)
            for node in nodes:
                if isinstance(node, ast.Assign):
                    targets, value = node.targets, node.value
                elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    targets, value = [node.target], node.value
                else:
                    continue
                root, _ = _chain(value)
                if (
                    isinstance(value, ast.Attribute)
                    and isinstance(root, ast.Name)
                    and root.id in self.chain_roots
                ):
                    self.chain_roots.update(t.id for t in targets if isinstance(t, ast.Name))
            if len(self.chain_roots) == before:
                return

    # --- names, attributes and constants ------------------------------------------------------------------
    def _attribute(self, node: ast.Attribute) -> None:
        root, attrs = _chain(node)
        if isinstance(node.value, ast.Attribute):
            self._inner.add(id(node.value))
        if isinstance(node.value, ast.Name):
            self._chain_heads.add(id(node.value))
        attr = node.attr
        if attr.startswith("__") and attr.endswith("__"):
            if attr not in ALLOWED_DUNDER_ATTRIBUTES:
                self.add(Category.UNSAFE_CODE, node, f"access to dunder attribute '{attr}'")
        elif attr in MODULE_ATTRIBUTES:
            self.add(Category.UNSAFE_CODE, node, f"access to module attribute '.{attr}'")
        elif attr in BANNED_ATTRIBUTES:
            self.add(Category.UNSAFE_CODE, node, f"access to banned attribute '.{attr}'")
        rooted = isinstance(root, ast.Name) and root.id in self.chain_roots
        if rooted and isinstance(node.ctx, (ast.Store, ast.Del)):
            self.add(Category.UNSAFE_CODE, node, f"assignment to module attribute '{ast.unparse(node)}'")
        if rooted and id(node) not in self._inner:
            self._module_chain(node, root.id, attrs)  # type: ignore[union-attr]

    def _module_chain(self, node: ast.AST, root: str, attrs: list[str]) -> None:
        for i, attr in enumerate(attrs):
            following = attrs[i + 1] if i + 1 < len(attrs) else None
            dotted = ".".join([root, *attrs[: i + 1]])
            if attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__")):
                self.add(Category.UNSAFE_CODE, node, f"access to private attribute '{dotted}'")
                return
            if attr in _OK_NEXT and following in _OK_NEXT[attr]:
                continue
            if attr in BANNED_MODULE_ATTRIBUTES or attr in CHAIN_MODULE_ATTRIBUTES:
                self.add(Category.UNSAFE_CODE, node, f"access to '{dotted}' (escape hatch)")
                return

    def _name(self, node: ast.Name) -> None:
        name = node.id
        if not isinstance(node.ctx, ast.Load):
            return
        if name in BANNED_CALLABLES:
            self.add(Category.UNSAFE_CODE, node, f"use of banned builtin '{name}'")
        elif name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDER_NAMES:
            self.add(Category.UNSAFE_CODE, node, f"use of dunder name '{name}'")

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            for match in _DUNDER.findall(value):
                if match not in ALLOWED_DUNDER_STRINGS:
                    self.add(Category.UNSAFE_CODE, node, f"string naming dunder '{match}'")
                    return

    def _module_values(self, nodes: list[ast.AST]) -> None:
        """A module object may only head an attribute chain, never be a value passed around or aliased."""
        for node in nodes:
            if (
                isinstance(node, ast.Name)
                and isinstance(node.ctx, ast.Load)
                and node.id in self.module_names
                and id(node) not in self._chain_heads
            ):
                self.add(Category.UNSAFE_CODE, node, f"module '{node.id}' used as a value")


def _structure_findings(tree: ast.Module, entry_point: str | None) -> list[Finding]:
    findings: list[Finding] = []
    if entry_point is not None:
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == entry_point]
        if not classes:
            findings.append(Finding(Category.STRUCTURE_ERROR, 0, f"no top-level class '{entry_point}'"))
    else:
        classes = find_module_classes(tree)
        if len(classes) != 1:
            names = ", ".join(c.name for c in classes) or "none"
            findings.append(
                Finding(
                    Category.STRUCTURE_ERROR,
                    0,
                    f"expected exactly one top-level nn.Module subclass, found {len(classes)} ({names})",
                )
            )
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for required in ("get_inputs", "get_init_inputs"):
        if required not in functions:
            findings.append(
                Finding(Category.STRUCTURE_ERROR, 0, f"missing module-level function {required}()")
            )
    return findings


def _verdict(findings: list[Finding], category: Category) -> Verdict:
    chosen = sorted((f for f in findings if f.category == category), key=lambda f: f.line)
    message = "; ".join(f.render() for f in chosen[:_MAX_REPORTED])
    if len(chosen) > _MAX_REPORTED:
        message += f"; and {len(chosen) - _MAX_REPORTED} more"
    return Verdict.reject(Stage.STATIC, category, message, checks={"static_findings": len(chosen)})


def check_static(
    source: str, entry_point: str | None = None, extra_allowed_imports: Iterable[str] = ()
) -> Verdict:
    """Parse and vet a program; ok, or rejected as syntax_error / unsafe_code / import_error / structure_error.

    Unsafe code outranks an unknown import, which outranks a structural problem, so a malicious program is
    always reported as unsafe whatever else is wrong with it. `entry_point` names the class to validate
    (other nn.Module helpers are then allowed); without it exactly one nn.Module subclass must exist.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return Verdict.reject(Stage.STATIC, Category.SYNTAX_ERROR, f"line {exc.lineno}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return Verdict.reject(Stage.STATIC, Category.SYNTAX_ERROR, f"cannot parse: {exc}")
    allowed = ALLOWED_IMPORTS | frozenset(m for m in extra_allowed_imports if not _dangerous_module(m))
    findings = _SafetyScan(tree, allowed).run() + _structure_findings(tree, entry_point)
    for category in (Category.UNSAFE_CODE, Category.IMPORT_ERROR, Category.STRUCTURE_ERROR):
        if any(f.category == category for f in findings):
            return _verdict(findings, category)
    return Verdict(ok=True, stage=str(Stage.STATIC))
