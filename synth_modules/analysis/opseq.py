"""The ordered ops a program's forward() performs, read from its code.

The contamination filter must judge what a program computes, not the pattern an LLM claims, so this walks the
AST: `self.x(...)` calls are resolved through the `__init__` assignments (nn.Sequential / nn.ModuleList contents
and locally defined submodules included), helper methods and module-level helpers called from forward are
inlined, and torch.* / F.* / tensor-method calls and arithmetic on tensors are emitted in evaluation order.

Names come out in KernelBench's spelling (`nn.Conv2d`, `torch.relu`, `F.gelu`, `Tensor.mean`, `add`), so
`normalize_op` (synth_modules.analysis.opnames) maps both sides into the same space. Two idioms are recognised from
dataflow: `x * sigmoid(x)` is emitted as `F.silu` and `x * tanh(softplus(x))` as `F.mish`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from synth_modules.analysis.opnames import normalize_op, normalize_ops
from synth_modules.program import find_module_classes

__all__ = ["OpSequenceError", "extract_op_sequence", "normalize_op", "normalized_op_sequence"]

_MAX_DEPTH = 8  # inlining depth (helpers calling helpers, submodules of submodules)
_MAX_UNROLL = 32  # ModuleList elements walked one by one
_CONVENTIONAL = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "math": "math"}
# Tensor methods and attributes whose result is not a tensor (sizes, Python scalars).
_NON_TENSOR_METHODS = frozenset(
    {"size", "dim", "numel", "item", "tolist", "ndimension", "stride", "is_contiguous", "element_size"}
)
_NON_TENSOR_ATTRS = frozenset({"shape", "dtype", "device", "ndim", "requires_grad", "is_cuda", "layout"})
_ARITH = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.FloorDiv: "div",
    ast.MatMult: "matmul",
    ast.Pow: "pow",
    ast.Mod: "remainder",
}
_COMPARE = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq", ast.NotEq: "ne"}
_BUILTIN_TENSOR_FUNCS = {"abs": "torch.abs", "max": "torch.max", "min": "torch.min", "sum": "torch.sum"}

# A module spec is a list of elements (one per child of a container), each the raw ops of one call.
Spec = list[list[str]]


class OpSequenceError(ValueError):
    """The source does not parse or has no nn.Module class to read."""


def _flatten(spec: Spec) -> list[str]:
    return [op for element in spec for op in element]


def _dump(node: ast.AST) -> str:
    return ast.dump(node, annotate_fields=False, include_attributes=False)


@dataclass
class _ClassInfo:
    node: ast.ClassDef
    modules: dict[str, Spec] = field(default_factory=dict)
    tensors: set[str] = field(default_factory=set)
    methods: dict[str, ast.FunctionDef] = field(default_factory=dict)


class _Program:
    """Module-level facts: import aliases, module classes and helper functions."""

    def __init__(self, tree: ast.Module):
        self.aliases: dict[str, str] = dict(_CONVENTIONAL)
        self.functions: dict[str, ast.FunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {c.name: c for c in find_module_classes(tree)}
        self._infos: dict[str, _ClassInfo] = {}
        self._inline_stack: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.aliases[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.FunctionDef):
                self.functions[node.name] = node

    def resolve(self, node: ast.expr) -> str | None:
        """Dotted path of a name expression through the imports (`F.relu` -> `torch.nn.functional.relu`)."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def info(self, name: str) -> _ClassInfo:
        if name not in self._infos:
            self._infos[name] = _InitReader(self, self.classes[name]).read()
        return self._infos[name]

    def class_ops(self, name: str, depth: int) -> list[str]:
        """Inline the forward of a locally defined submodule class."""
        if name in self._inline_stack or depth > _MAX_DEPTH:
            return []
        self._inline_stack.append(name)
        try:
            return _ForwardWalker(self, self.info(name), depth + 1).run()
        finally:
            self._inline_stack.pop()


def _raw_name(path: str) -> str | None:
    """KernelBench spelling of a resolved callable path, or None when it is not a torch op."""
    if path.startswith("torch.nn.functional."):
        return "F." + path.removeprefix("torch.nn.functional.")
    if path.startswith("torch.nn.init.") or path.startswith("torch.nn.utils."):
        return None
    if path.startswith("torch.nn."):
        return "nn." + path.removeprefix("torch.nn.")
    if path.startswith("torch."):
        return path
    return None


class _InitReader:
    """Reads `__init__` to learn which attributes are submodules (and their ops) and which are tensors."""

    def __init__(self, program: _Program, node: ast.ClassDef):
        self.program = program
        self.info = _ClassInfo(node)
        self.local_specs: dict[str, Spec] = {}
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                self.info.methods[item.name] = item

    def read(self) -> _ClassInfo:
        init = self.info.methods.get("__init__")
        if init is not None:
            self._statements(init.body)
        return self.info

    def _statements(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if stmt.value is not None:
                    for target in targets:
                        self._assign(target, stmt.value)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                self._call(stmt.value)
            elif isinstance(stmt, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
                self._statements(stmt.body)
                self._statements(getattr(stmt, "orelse", []))

    def _assign(self, target: ast.expr, value: ast.expr) -> None:
        spec = self.spec(value)
        if isinstance(target, ast.Attribute) and _is_self(target.value):
            if spec is not None:
                self.info.modules[target.attr] = spec
            elif self._is_tensor_value(value):
                self.info.tensors.add(target.attr)
        elif isinstance(target, ast.Name) and spec is not None:
            self.local_specs[target.id] = spec

    def _call(self, call: ast.Call) -> None:
        func = call.func
        if not isinstance(func, ast.Attribute):
            return
        if isinstance(func.value, ast.Name) and func.value.id in self.local_specs and call.args:
            extra = self.spec(call.args[-1])
            if extra is not None and func.attr in {"append", "extend", "insert"}:
                self.local_specs[func.value.id] = self.local_specs[func.value.id] + extra
            return
        if isinstance(func.value, ast.Attribute) and _is_self(func.value.value) and call.args:
            # self.layers.append(nn.ReLU()) on a container built earlier in __init__
            extra = self.spec(call.args[-1])
            if extra is not None and func.attr in {"append", "extend", "insert"}:
                name = func.value.attr
                self.info.modules[name] = self.info.modules.get(name, []) + extra
            return
        if _is_self(func.value) and call.args and isinstance(call.args[0], ast.Constant):
            name = str(call.args[0].value)
            if func.attr in {"register_buffer", "register_parameter"}:
                self.info.tensors.add(name)
            elif func.attr == "add_module" and len(call.args) > 1:
                spec = self.spec(call.args[1])
                if spec is not None:
                    self.info.modules[name] = spec

    def _is_tensor_value(self, value: ast.expr) -> bool:
        if isinstance(value, ast.Call):
            path = self.program.resolve(value.func) or ""
            return path.startswith("torch.") and not path.startswith("torch.nn.functional")
        return False

    def spec(self, node: ast.expr) -> Spec | None:
        """The ops a submodule expression performs when called, per container element."""
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in self.program.classes:
                return [self.program.class_ops(node.func.id, depth=0)]
            path = self.program.resolve(node.func) or ""
            if not path.startswith("torch.nn.") or path.startswith("torch.nn.functional"):
                return None
            kind = path.rsplit(".", 1)[-1]
            if kind == "Parameter" or not kind[:1].isupper():
                return None
            if kind in {"Sequential", "ModuleList", "ModuleDict", "ParameterList"}:
                out: Spec = []
                for arg in node.args:
                    out.extend(self.spec(arg) or [])
                return out
            return [[f"nn.{kind}"]]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [element for item in node.elts for element in (self.spec(item) or [])]
        if isinstance(node, ast.Dict):
            return [element for item in node.values for element in (self.spec(item) or [])]
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self.spec(node.elt)
        if isinstance(node, ast.DictComp):
            return self.spec(node.value)
        if isinstance(node, ast.Starred):
            return self.spec(node.value)
        if isinstance(node, ast.Name):
            return self.local_specs.get(node.id)
        if isinstance(node, ast.IfExp):
            return self.spec(node.body) or self.spec(node.orelse)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.spec(node.left), self.spec(node.right)
            if left is not None or right is not None:
                return (left or []) + (right or [])
        return None


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


class _ForwardWalker:
    """Emits the raw ops of one class's forward() in evaluation order."""

    def __init__(self, program: _Program, info: _ClassInfo, depth: int = 0):
        self.program = program
        self.info = info
        self.depth = depth
        self.ops: list[str] = []
        # name -> True (tensor), or a Spec (a submodule bound to a local name)
        self.env: dict[str, bool | Spec] = {}

    def run(self) -> list[str]:
        forward = self.info.methods.get("forward")
        if forward is None:
            return []
        self._bind_args(forward, None)
        self._block(forward.body)
        return self.ops

    # ----- statements ---------------------------------------------------------------------------------------
    def _bind_args(self, func: ast.FunctionDef, flags: list[bool] | None) -> None:
        params = [a.arg for a in (*func.args.posonlyargs, *func.args.args) if a.arg != "self"]
        for position, name in enumerate(params):
            self.env[name] = True if flags is None or position >= len(flags) else flags[position]
        for extra in (func.args.vararg, *func.args.kwonlyargs):
            if extra is not None:
                self.env[extra.arg] = True

    def _block(self, body: list[ast.stmt]) -> bool:
        """Walk statements; return whether a returned value is a tensor."""
        returned = False
        for stmt in body:
            returned = self._statement(stmt) or returned
        return returned

    def _statement(self, stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.Assign):
            is_tensor = self._expr(stmt.value)
            for target in stmt.targets:
                self._bind(target, stmt.value, is_tensor)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._bind(stmt.target, stmt.value, self._expr(stmt.value))
        elif isinstance(stmt, ast.AugAssign):
            left = self._expr(stmt.target)
            right = self._expr(stmt.value)
            if (left or right) and type(stmt.op) in _ARITH:
                self.ops.append(_ARITH[type(stmt.op)])
        elif isinstance(stmt, ast.Expr):
            self._expr(stmt.value)
        elif isinstance(stmt, ast.Return):
            return self._expr(stmt.value) if stmt.value is not None else False
        elif isinstance(stmt, ast.If):
            self._expr(stmt.test)
            return self._block(stmt.body) | self._block(stmt.orelse)
        elif isinstance(stmt, ast.For):
            return self._for(stmt)
        elif isinstance(stmt, (ast.While, ast.With, ast.Try)):
            return self._block(stmt.body)
        return False

    def _bind(self, target: ast.expr, value: ast.expr, is_tensor: bool) -> None:
        if isinstance(target, ast.Name):
            spec = self._module_of(value)
            self.env[target.id] = spec if spec is not None else is_tensor
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind(element, ast.Constant(None), is_tensor)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, value, is_tensor)

    def _for(self, stmt: ast.For) -> bool:
        iterable = stmt.iter
        target = stmt.target
        if (
            isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "enumerate"
            and iterable.args
            and isinstance(target, ast.Tuple)
            and len(target.elts) == 2
        ):
            iterable, target = iterable.args[0], target.elts[1]
        spec = self._module_of(iterable)
        if spec is not None and isinstance(target, ast.Name):
            returned = False
            for element in spec[:_MAX_UNROLL]:
                self.env[target.id] = [element]
                returned = self._block(stmt.body) or returned
            return returned
        self._bind(target, ast.Constant(None), self._expr(iterable))
        return self._block(stmt.body)

    # ----- expressions --------------------------------------------------------------------------------------
    def _module_of(self, node: ast.expr) -> Spec | None:
        """The submodule an expression denotes (self.x, self.layers[i], a local bound to one), if any."""
        if isinstance(node, ast.Attribute) and _is_self(node.value):
            return self.info.modules.get(node.attr)
        if isinstance(node, ast.Name):
            bound = self.env.get(node.id)
            return bound if isinstance(bound, list) else None
        if isinstance(node, ast.Subscript):
            spec = self._module_of(node.value)
            if spec is None:
                return None
            index = node.slice
            if (
                isinstance(index, ast.Constant)
                and isinstance(index.value, int)
                and -len(spec) <= index.value < len(spec)
            ):
                return [spec[index.value]]
            if isinstance(index, ast.Slice):
                return spec  # a slice of a container: conservatively all of it
            return [_flatten(spec)]
        return None

    def _expr(self, node: ast.expr | None) -> bool:
        """Walk an expression, emitting its ops; return whether its value is a tensor."""
        if node is None:
            return False
        if isinstance(node, ast.Name):
            bound = self.env.get(node.id)
            return bound is True
        if isinstance(node, ast.Constant):
            return False
        if isinstance(node, ast.Attribute):
            if _is_self(node.value):
                return node.attr in self.info.tensors or node.attr in self.info.modules
            base = self._expr(node.value)
            return base and node.attr not in _NON_TENSOR_ATTRS
        if isinstance(node, ast.Subscript):
            base = self._expr(node.value)
            self._expr(node.slice)
            return base
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.UnaryOp):
            operand = self._expr(node.operand)
            if operand and isinstance(node.op, ast.USub):
                self.ops.append("neg")
            return operand and not isinstance(node.op, ast.Not)
        if isinstance(node, ast.Compare):
            values = [self._expr(node.left), *(self._expr(c) for c in node.comparators)]
            if any(values):
                self.ops.extend(_COMPARE[type(op)] for op in node.ops if type(op) in _COMPARE)
            return any(values)
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self._expr(value)
            return False
        if isinstance(node, ast.IfExp):
            self._expr(node.test)
            return self._expr(node.body) | self._expr(node.orelse)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any([self._expr(element) for element in node.elts])
        if isinstance(node, ast.Starred):
            return self._expr(node.value)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            for generator in node.generators:
                self._bind(generator.target, ast.Constant(None), self._expr(generator.iter))
            return self._expr(node.elt)
        if isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                self._expr(part)
        return False

    def _binop(self, node: ast.BinOp) -> bool:
        if isinstance(node.op, ast.Mult):
            for this, other in ((node.left, node.right), (node.right, node.left)):
                fused = self._gated_idiom(this, other)
                if fused is not None:
                    self._expr(other)
                    self.ops.append(fused)
                    return True
        left = self._expr(node.left)
        right = self._expr(node.right)
        if left or right:
            self.ops.append(_ARITH.get(type(node.op), type(node.op).__name__.lower()))
        return left or right

    def _gated_idiom(self, gate: ast.expr, value: ast.expr) -> str | None:
        """`value * sigmoid(value)` is swish and `value * tanh(softplus(value))` is mish."""
        inner = self._unary_call_arg(gate, "sigmoid")
        if inner is not None and _dump(inner) == _dump(value):
            return "F.silu"
        inner = self._unary_call_arg(gate, "tanh")
        if inner is not None:
            softplus_arg = self._unary_call_arg(inner, "softplus")
            if softplus_arg is not None and _dump(softplus_arg) == _dump(value):
                return "F.mish"
        return None

    def _unary_call_arg(self, node: ast.expr, op: str) -> ast.expr | None:
        """If `node` applies `op` (any spelling) to one tensor expression, that expression."""
        if not isinstance(node, ast.Call):
            return None
        func = node.func
        spec = self._module_of(func)
        if spec is not None:
            ops = normalize_ops(_flatten(spec))
            return node.args[0] if ops == [op] and node.args else None
        path = self.program.resolve(func)
        if path is not None:
            return node.args[0] if normalize_op(path) == op and node.args else None
        if isinstance(func, ast.Attribute) and normalize_op(func.attr) == op and not node.args:
            return func.value
        return None

    def _call(self, node: ast.Call) -> bool:
        func = node.func
        spec = self._module_of(func)
        if spec is not None:
            self._args(node)
            self.ops.extend(_flatten(spec))
            return True
        if isinstance(func, ast.Call):  # nn.ReLU()(x): construct and call in one expression
            path = self.program.resolve(func.func) or ""
            raw = _raw_name(path)
            self._args(node)
            if raw is not None and raw.startswith("nn."):
                self.ops.append(raw)
                return True
            return False
        if isinstance(func, ast.Attribute) and _is_self(func.value) and func.attr in self.info.methods:
            return self._inline(self.info.methods[func.attr], node)
        if isinstance(func, ast.Name):
            return self._name_call(func.id, node)
        path = self.program.resolve(func)
        if path is not None:
            self._args(node)
            raw = _raw_name(path)
            if raw is None:
                return False
            if raw.startswith("nn.") and raw[3:4].isupper():
                return False  # constructing a module inside forward without calling it
            self.ops.append(raw)
            return True
        if isinstance(func, ast.Attribute):
            receiver = self._expr(func.value)
            self._args(node)
            if receiver and func.attr not in _NON_TENSOR_METHODS:
                self.ops.append(f"Tensor.{func.attr}")
                return True
            return False
        self._args(node)
        return False

    def _name_call(self, name: str, node: ast.Call) -> bool:
        if name in self.program.functions:
            return self._inline(self.program.functions[name], node)
        if name in self.program.classes:  # LocalBlock(...)(x) is rare; treat construction as no op
            self._args(node)
            return False
        path = self.program.resolve(ast.Name(name))
        flags = self._args(node)
        if path is not None:
            raw = _raw_name(path)
            if raw is not None and not (raw.startswith("nn.") and raw[3:4].isupper()):
                self.ops.append(raw)
                return True
            return False
        if name in _BUILTIN_TENSOR_FUNCS and any(flags):
            self.ops.append(_BUILTIN_TENSOR_FUNCS[name])
            return True
        return False

    def _args(self, node: ast.Call) -> list[bool]:
        flags = [self._expr(arg) for arg in node.args]
        for keyword in node.keywords:
            self._expr(keyword.value)
        return flags

    def _inline(self, func: ast.FunctionDef, node: ast.Call) -> bool:
        flags = self._args(node)
        if self.depth >= _MAX_DEPTH:
            return any(flags)
        walker = _ForwardWalker(self.program, self.info, self.depth + 1)
        walker._bind_args(func, flags)
        returned = walker._block(func.body)
        self.ops.extend(walker.ops)
        return returned


def _entry_class(program: _Program, entry_point: str | None) -> str:
    if entry_point is not None:
        if entry_point not in program.classes:
            raise OpSequenceError(f"no nn.Module class named {entry_point}")
        return entry_point
    if not program.classes:
        raise OpSequenceError("no nn.Module class in the source")
    # Submodules are defined before the model that uses them: the last class is the entry point.
    return list(program.classes)[-1]


def extract_op_sequence(source: str, entry_point: str | None = None) -> list[str]:
    """Ordered raw ops of `entry_point`'s forward() (KernelBench spelling), read from the AST.

    Raises OpSequenceError when the source does not parse or has no such nn.Module class.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise OpSequenceError(f"source does not parse: {error}") from None
    program = _Program(tree)
    name = _entry_class(program, entry_point)
    return program.class_ops(name, depth=0)


def normalized_op_sequence(source: str, entry_point: str | None = None) -> list[str]:
    """`extract_op_sequence` mapped through `normalize_op`, shape-only ops dropped."""
    return normalize_ops(extract_op_sequence(source, entry_point))
