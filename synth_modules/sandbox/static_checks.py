"""Static safety and structure checks on a program's source, run in the parent before any sandbox work.

They are the first line of defence (the process sandbox is the second) and cheap: one parse and one AST walk.
The checks are an allow-list (static_policy): a program may import only its policy's modules, read only the
torch / nn / F / ... names the policy lists, and (program policy) read only the attributes tensors, modules and
builtins have or that it defines itself. On top of that a fixed floor holds under every policy: no dunder
access, frames, host-reaching names, builtins that reach the interpreter (exec/eval/open/getattr with a
computed name ...), modules used as values, assignment to attributes of modules, classes or anything that may
be one, format templates that reach attributes, and no code hidden in strings that annotations evaluation or
TorchScript would run. Every branch is analysed, including those that only run where CUDA is visible.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from synth_modules.program import find_module_classes
from synth_modules.sandbox import static_rules
from synth_modules.sandbox.static_policy import StaticPolicy, policy_named
from synth_modules.types import Category, Stage, Verdict

# Modules that reach the host (files, processes, network, interpreter internals). Importing one is unsafe_code;
# importing any other module off the policy's list is an import_error. (Categorisation only: the policy's
# allow-list is what admits an import.)
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
        "pickletools", "shlex", "sympy", "typing_inspect",
    }
)  # fmt: skip

# The floor: attribute names refused on any object under every policy, even if the program defines them.
MODULE_ATTRIBUTES = frozenset(
    {
        "os", "sys", "subprocess", "socket", "ctypes", "pickle", "shutil", "importlib", "builtins",
        "multiprocessing", "threading", "_thread", "posix", "pty", "marshal", "inspect", "gc", "tempfile",
        "pathlib", "glob", "codecs", "linecache", "runpy", "sysconfig", "np", "numpy", "ctypeslib",
    }
)  # fmt: skip
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
        "load_url", "load_state_dict_from_url", "download_url_to_file", "jiterator", "sympify",
        "get_type_hints", "ForwardRef", "_evaluate",
    }
)  # fmt: skip
BANNED_CALLABLES = frozenset(
    {
        "exec", "eval", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
        "vars", "breakpoint", "input", "exit", "quit", "help", "memoryview", "__builtins__", "__loader__",
        "__spec__", "copyright", "credits", "license", "dir",
    }
)  # fmt: skip
ALLOWED_DUNDER_ATTRIBUTES = frozenset({"__init__", "__name__", "__doc__"})
ALLOWED_DUNDER_NAMES = frozenset({"__name__", "__doc__"})
ALLOWED_DUNDER_STORES = frozenset({"__all__", "__slots__", "__constants__"})
ALLOWED_DUNDER_STRINGS = frozenset({"__main__"})
_DUNDER = re.compile(r"__[A-Za-z0-9_]+__")
_MAX_REPORTED = 3


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


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


class _SafetyScan:
    """Collects unsafe-code and import findings over one parsed program under one policy."""

    def __init__(self, tree: ast.Module, source: str, policy: StaticPolicy):
        self.policy = policy
        self.findings: list[Finding] = []
        self.bound: dict[str, str] = {}  # imported name -> dotted path (`F` -> torch.nn.functional)
        program_nodes = list(ast.walk(tree))
        hidden, self.unreadable = static_rules.evaluated_strings(program_nodes, source)
        self.nodes = program_nodes + [n for root in hidden for n in ast.walk(root)]
        self.parents = {id(c): p for p in self.nodes for c in ast.iter_child_nodes(p)}
        self.defined = static_rules.defined_attributes(program_nodes)
        self.assignable = static_rules.AssignableNames(tree, program_nodes, self.parents)
        self._inner: set[int] = set()  # Attribute nodes inside a longer chain
        self.unknown: set[str] = (
            set()
        )  # names bound by refused (import_error) imports: only the floor applies

    def add(self, category: Category, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(category, getattr(node, "lineno", 0), message))

    def run(self) -> list[Finding]:
        for node in self.nodes:  # imports first: bindings are known wherever a module is used
            if isinstance(node, ast.Import):
                self._import(node)
            elif isinstance(node, ast.ImportFrom):
                self._import_from(node)
        for node in self.nodes:  # breadth-first: an outer Attribute is seen before the chain inside it
            if isinstance(node, ast.Attribute):
                self._attribute(node)
            elif isinstance(node, ast.Name):
                self._name(node)
            elif isinstance(node, ast.Constant):
                self._constant(node)
            elif isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self._definition(node)
        for line in self.unreadable:
            self.findings.append(Finding(Category.UNSAFE_CODE, line, "unreadable '# type:' comment"))
        return self.findings

    # --- imports -----------------------------------------------------------------------------------------
    def _check_module(self, node: ast.AST, module: str, binds: str = "") -> bool:
        if module in self.policy.imports:
            return True
        self.unknown.add(binds)
        parts = module.split(".")
        reachable = all(self.policy.allows(".".join(parts[:i]), parts[i]) for i in range(1, len(parts)))
        if (
            any(".".join(parts[: i + 1]) in DANGEROUS_MODULES for i in range(len(parts)))
            or any(p.startswith("_") for p in parts)
            or (parts[0] in self.policy.imports and not reachable)
        ):
            self.add(Category.UNSAFE_CODE, node, f"import of unsafe module '{module}'")
        else:
            self.add(Category.IMPORT_ERROR, node, f"import of '{module}' is not on the allow-list")
        return False

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._check_module(node, alias.name, alias.asname or alias.name.split(".")[0]):
                if alias.asname:
                    self.bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.bound[top] = top

    def _import_from(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.add(
                Category.IMPORT_ERROR, node, f"relative import '{'.' * node.level}{module}' is not allowed"
            )
            return
        if not self._check_module(node, module) or module == "__future__":
            return
        for alias in node.names:
            if alias.name == "*":
                if module not in self.policy.star_imports:
                    self.add(
                        Category.UNSAFE_CODE,
                        node,
                        f"star import from '{module}' binds names off the allow-list",
                    )
                continue
            if not self.policy.allows(module, alias.name):
                self.add(
                    Category.UNSAFE_CODE, node, f"import of '{module}.{alias.name}' is not on the allow-list"
                )
                continue
            self.bound[alias.asname or alias.name] = f"{module}.{alias.name}"

    # --- attributes ----------------------------------------------------------------------------------------
    def _floor(self, node: ast.AST, attr: str) -> bool:
        """The attribute rules every policy shares; True when `attr` passed them."""
        if _is_dunder(attr):
            if attr in ALLOWED_DUNDER_ATTRIBUTES:
                return True
            self.add(Category.UNSAFE_CODE, node, f"access to dunder attribute '{attr}'")
        elif attr in MODULE_ATTRIBUTES:
            self.add(Category.UNSAFE_CODE, node, f"access to module attribute '.{attr}'")
        elif attr in BANNED_ATTRIBUTES:
            self.add(Category.UNSAFE_CODE, node, f"access to banned attribute '.{attr}'")
        else:
            return True
        return False

    def _attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Attribute):
            self._inner.add(id(node.value))
        if node.attr in ("format", "format_map"):
            problem = static_rules.format_problem(node)
            if problem:
                self.add(Category.UNSAFE_CODE, node, problem)
        if not isinstance(node.ctx, ast.Load):
            self._store(node)
        if id(node) in self._inner:
            return  # checked with the outermost attribute of its chain
        root, attrs = _chain(node)
        if isinstance(root, ast.Name) and root.id in self.unknown:
            all(self._floor(node, attr) for attr in attrs)
            return
        path = self.bound.get(root.id) if isinstance(root, ast.Name) else None
        values = attrs
        if path is not None and self.policy.is_module(path):
            values = []
            for i, attr in enumerate(attrs):
                if not self._floor(node, attr):
                    return
                if not self.policy.allows(path, attr):
                    dotted = ".".join([root.id, *attrs[: i + 1]])  # type: ignore[union-attr]
                    self.add(Category.UNSAFE_CODE, node, f"'{dotted}' is not on the allow-list")
                    return
                path = f"{path}.{attr}"
                if not self.policy.is_module(path):
                    values = attrs[i + 1 :]
                    break
            else:
                self._module_value(node, path)
        for attr in values:
            if not self._floor(node, attr):
                return
            allowed = self.policy.value_attributes
            if (
                allowed is not None
                and attr not in allowed
                and attr not in self.defined
                and not _is_dunder(attr)
            ):
                self.add(Category.UNSAFE_CODE, node, f"attribute '.{attr}' is not on the allow-list")
                return

    def _module_value(self, node: ast.expr, path: str) -> None:
        """A module may only head an attribute chain, never be a value passed around, returned or aliased."""
        parent = self.parents.get(id(node))
        if not (isinstance(parent, ast.Attribute) and parent.value is node):
            self.add(Category.UNSAFE_CODE, node, f"module '{path}' used as a value")

    def _store(self, node: ast.Attribute) -> None:
        base = node.value
        while isinstance(base, (ast.Attribute, ast.Subscript)):
            base = base.value
        if isinstance(base, ast.Name) and base.id not in self.bound and self.assignable.allows(base.id, node):
            return
        what = f"'{base.id}'" if isinstance(base, ast.Name) else "a computed object"
        self.add(
            Category.UNSAFE_CODE,
            node,
            f"assignment to attribute '{ast.unparse(node)}' of {what} (may patch a module or class)",
        )

    # --- names, calls, constants, definitions ----------------------------------------------------------------
    def _name(self, node: ast.Name) -> None:
        name = node.id
        if not isinstance(node.ctx, ast.Load):
            if name in self.bound and self.policy.is_module(self.bound[name]):
                self.add(Category.UNSAFE_CODE, node, f"rebinding of module name '{name}'")
            elif _is_dunder(name) and name not in ALLOWED_DUNDER_STORES:
                self.add(Category.UNSAFE_CODE, node, f"assignment to dunder name '{name}'")
            return
        if name == "getattr":
            self.add(Category.UNSAFE_CODE, node, "getattr with a computed attribute name")
        elif name in BANNED_CALLABLES:
            self.add(Category.UNSAFE_CODE, node, f"use of banned builtin '{name}'")
        elif _is_dunder(name) and name not in ALLOWED_DUNDER_NAMES:
            self.add(Category.UNSAFE_CODE, node, f"use of dunder name '{name}'")
        elif name in self.bound and self.policy.is_module(self.bound[name]):
            self._module_value(node, self.bound[name])

    def _call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "type" and len(node.args) > 1:
            self.add(Category.UNSAFE_CODE, node, "type() with several arguments builds a class at runtime")

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            for match in _DUNDER.findall(value):
                if match not in ALLOWED_DUNDER_STRINGS:
                    self.add(Category.UNSAFE_CODE, node, f"string naming dunder '{match}'")
                    return

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        if isinstance(node, ast.ClassDef):
            for keyword in node.keywords:
                self.add(Category.UNSAFE_CODE, node, f"class keyword '{keyword.arg}' (metaclass hooks)")
            return
        if _is_dunder(node.name):
            in_class = isinstance(self.parents.get(id(node)), ast.ClassDef)
            if not (in_class and node.name in self.policy.dunder_methods):
                self.add(Category.UNSAFE_CODE, node, f"definition of special method '{node.name}'")


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
    source: str, entry_point: str | None = None, policy: StaticPolicy | str = "program"
) -> Verdict:
    """Parse and vet a program; ok, or rejected as syntax_error / unsafe_code / import_error / structure_error.

    Unsafe code outranks an unknown import, which outranks a structural problem, so a malicious program is
    always reported as unsafe whatever else is wrong with it. `entry_point` names the class to validate
    (other nn.Module helpers are then allowed); without it exactly one nn.Module subclass must exist.
    `policy` is a StaticPolicy or its name ("program", the default; "repository" for github_index).
    """
    if isinstance(policy, str):
        policy = policy_named(policy)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return Verdict.reject(Stage.STATIC, Category.SYNTAX_ERROR, f"line {exc.lineno}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return Verdict.reject(Stage.STATIC, Category.SYNTAX_ERROR, f"cannot parse: {exc}")
    try:
        findings = _SafetyScan(static_rules.LiteralGetattr().visit(tree), source, policy).run()
    except RecursionError:
        return Verdict.reject(Stage.STATIC, Category.UNSAFE_CODE, "program too deeply nested to vet")
    findings += _structure_findings(tree, entry_point)
    for category in (Category.UNSAFE_CODE, Category.IMPORT_ERROR, Category.STRUCTURE_ERROR):
        if any(f.category == category for f in findings):
            return _verdict(findings, category)
    return Verdict(ok=True, stage=str(Stage.STATIC))
