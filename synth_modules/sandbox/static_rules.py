"""Source rewrites and small rules the static scan applies before and while it walks a program.

- literal `getattr(x, "name")` / `hasattr(...)` become `x.name`, so they meet the attribute rules (a computed
  name is refused by the scan);
- code that something evaluates from a string -- string annotations (typing.get_type_hints, TorchScript) and
  `# type:` comments (TorchScript) -- is parsed and scanned like the program's own code;
- `str.format` / `format_map` field names may not reach attributes or items (`"{0.__class__}"`);
- which names may have their attributes assigned: `self` of a method and objects the program built.
"""

from __future__ import annotations

import ast
import io
import re
import string
import tokenize

_TYPE_COMMENT = re.compile(r"#\s*type:\s*(.+)$")
_PLAIN_FIELD = re.compile(r"^[A-Za-z_0-9]*$")
# Calls whose result may be a class or another module's object, never "something this program built".
_NOT_CONSTRUCTORS = frozenset({"type", "super", "getattr", "vars", "globals", "locals", "iter", "next"})


class LiteralGetattr(ast.NodeTransformer):
    """`getattr(o, "n")` -> `o.n`; `getattr(o, "n", d)` -> `(o.n, d)`; the same for hasattr."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func, args = node.func, node.args
        if (
            isinstance(func, ast.Name)
            and func.id in ("getattr", "hasattr")
            and len(args) in (2, 3)
            and not node.keywords
            and isinstance(args[1], ast.Constant)
            and isinstance(args[1].value, str)
            and args[1].value.isidentifier()
        ):
            attribute = ast.copy_location(ast.Attribute(args[0], args[1].value, ast.Load()), node)
            if len(args) == 2:
                return attribute
            return ast.copy_location(ast.Tuple([attribute, args[2]], ast.Load()), node)
        return node


def _at_line(tree: ast.AST, line: int) -> ast.AST:
    for node in ast.walk(tree):
        if "lineno" in node._attributes:
            node.lineno, node.end_lineno = line, line  # type: ignore[attr-defined]
            node.col_offset, node.end_col_offset = 0, 0  # type: ignore[attr-defined]
    return tree


def _annotations(nodes: list[ast.AST]) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in nodes:
        if isinstance(node, ast.arg) and node.annotation is not None:
            found.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return found


def evaluated_strings(nodes: list[ast.AST], source: str) -> tuple[list[ast.AST], list[int]]:
    """Code hidden in strings that annotations evaluation or TorchScript would run, parsed.

    Returns the parsed trees (positioned at their line) and the lines of `# type:` comments that cannot be
    read, which the caller refuses: what cannot be parsed here cannot be vetted.
    """
    trees: list[ast.AST] = []
    for annotation in _annotations(nodes):
        for node in ast.walk(annotation):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    trees.append(_at_line(ast.parse(node.value.strip(), mode="eval"), node.lineno))
                except SyntaxError:
                    continue  # not an expression: nothing can evaluate it either
    unreadable: list[int] = []
    if "type:" not in source:
        return trees, unreadable
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return trees, [1] if "type:" in source else []
    for token in tokens:
        match = _TYPE_COMMENT.match(token.string) if token.type == tokenize.COMMENT else None
        if not match or match.group(1).strip().startswith("ignore"):
            continue
        text, line = match.group(1).strip(), token.start[0]
        for mode in ("func_type", "eval"):
            try:
                trees.append(_at_line(ast.parse(text, mode=mode), line))
                break
            except SyntaxError:
                continue
        else:
            unreadable.append(line)
    return trees, unreadable


def format_problem(node: ast.Attribute) -> str | None:
    """Why a `.format` / `.format_map` attribute is refused, or None when it is a plain template."""
    receiver = node.value
    if not (isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)):
        return f"str.{node.attr} on a computed string (only a literal template may be formatted)"
    pending = [receiver.value]
    while pending:
        try:
            parsed = list(string.Formatter().parse(pending.pop()))
        except ValueError:
            return f"malformed format template in str.{node.attr}"
        for _, field, spec, _ in parsed:
            if field is not None and not _PLAIN_FIELD.match(field):
                return f"format field '{{{field}}}' reaches an attribute or item"
            if spec:
                pending.append(spec)
    return None


_SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _constructed(value: ast.expr | None) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    return not (isinstance(func, ast.Name) and func.id in _NOT_CONSTRUCTORS)


def _is_method(fn: ast.AST, parent: ast.AST | None) -> bool:
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not isinstance(parent, ast.ClassDef):
        return False
    decorators = {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}
    return bool(fn.args.args) and not decorators & {"staticmethod", "classmethod"}


def _scope_nodes(scope: ast.AST):
    """Nodes of `scope` itself, not of the functions, lambdas and classes nested in it."""
    pending = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, _SCOPES):
            pending.extend(ast.iter_child_nodes(node))


class AssignableNames:
    """Which names a program may assign attributes of, scope by scope: the `self` of a method, or a name
    that the scope binds only to the result of a call that builds an object (`layer = nn.Linear(...)`).

    A parameter, loop variable, import, class, alias or `type(...)` result may be a module or a class, so
    assigning its attributes could monkeypatch torch. Names not bound in a scope are looked up outward.
    """

    def __init__(self, tree: ast.Module, nodes: list[ast.AST], parents: dict[int, ast.AST]):
        self.parents = parents
        self.verdicts: dict[int, dict[str, bool]] = {}
        for scope in [tree, *(n for n in nodes if isinstance(n, _SCOPES))]:
            self.verdicts[id(scope)] = self._bindings(scope)

    def _bindings(self, scope: ast.AST) -> dict[str, bool]:
        names: dict[str, bool] = {}

        def bind(name: str, ok: bool) -> None:
            names[name] = names.get(name, True) and ok

        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = scope.args
            params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            params += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            method = _is_method(scope, self.parents.get(id(scope)))
            for position, param in enumerate(params):
                bind(param.arg, method and position == 0)
        handled: set[int] = set()
        nodes = list(_scope_nodes(scope))
        for node in nodes:
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        handled.add(id(target))
                        bind(target.id, _constructed(node.value))
        for node in nodes:
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and id(node) not in handled:
                bind(node.id, False)  # for / with / comprehension / unpacking / augmented targets, deletions
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(node.name, False)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bind((alias.asname or alias.name).split(".")[0], False)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bind(node.name, False)
        return names

    def allows(self, name: str, node: ast.AST) -> bool:
        """May `name`'s attributes be assigned at `node`?"""
        scope = self.parents.get(id(node))
        while scope is not None:
            if isinstance(scope, _SCOPES) and name in self.verdicts.get(id(scope), {}):
                return self.verdicts[id(scope)][name]
            scope = self.parents.get(id(scope))
        return False


def defined_attributes(nodes: list[ast.AST]) -> set[str]:
    """Attribute names the program itself creates: assigned attributes, class-body names, registered
    buffers / parameters / submodules. Reading them back is always allowed."""
    names: set[str] = set()
    registrars = {"register_buffer", "register_parameter", "add_module", "register_module"}
    for node in nodes:
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in registrars
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names
