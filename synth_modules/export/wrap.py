"""Wrap a cleaned Triton module as `<entry_point>New(nn.Module)`, a drop-in for the original module.

The New class keeps the original `__init__` (so its parameters, buffers and `state_dict` keys are the same) and
gets a generated `forward` that hands `call(...)` the module's own tensors and the forward inputs in exactly the
order Inductor's graph expects (recorded at capture time as a `CallSpec`), then rebuilds the original output
structure from call's results.
"""

from __future__ import annotations

import ast
import copy
import keyword
from dataclasses import asdict, dataclass

from synth_modules.export.clean import CleanedCode
from synth_modules.export.codefmt import format_python
from synth_modules.export.errors import ExportError
from synth_modules.program import find_module_classes, rename_class
from synth_modules.types import Category

NEW_SUFFIX = "New"
_PROGRAM_FUNCTIONS = frozenset({"get_inputs", "get_init_inputs"})
_OUTPUT_KINDS = frozenset({"tensor", "tuple", "list"})


@dataclass(frozen=True)
class CallSpec:
    """How the New module's forward feeds `call` and rebuilds the outputs.

    `args` and `outputs.items` use references: `param:<dotted name>`, `buffer:<dotted name>`, `input:<i>`;
    output items may also be `call:<j>` (the j-th tensor call returns). `output_kind` is tensor, tuple or list.
    """

    args: list[str]
    output_kind: str
    outputs: list[str]
    n_inputs: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CallSpec:
        return cls(
            args=list(data["args"]),
            output_kind=str(data["output_kind"]),
            outputs=list(data["outputs"]),
            n_inputs=int(data["n_inputs"]),
        )


def new_class_name(entry_point: str) -> str:
    return f"{entry_point}{NEW_SUFFIX}"


def _tensor_ref(ref: str, input_names: list[str], output_var: str) -> str:
    """Python expression (inside forward) for one `kind:value` reference."""
    kind, _, value = ref.partition(":")
    if kind == "input":
        return input_names[int(value)]
    if kind == "call":
        return f"{output_var}[{int(value)}]"
    if kind in {"param", "buffer"}:
        parts = value.split(".")
        if all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
            return "self." + value
        getter = "get_parameter" if kind == "param" else "get_buffer"
        return f"self.{getter}({value!r})"
    raise ValueError(f"unknown tensor reference {ref!r}")


def _forward_input_names(forward: ast.FunctionDef | None, n_inputs: int) -> list[str]:
    """The original forward's positional names when they fit the inputs exactly, else input_0..input_N."""
    if forward is not None:
        args = forward.args
        names = [a.arg for a in [*args.posonlyargs, *args.args][1:]]
        plain = args.vararg is None and args.kwarg is None and not args.kwonlyargs
        if plain and len(names) == n_inputs and len(set(names)) == len(names):
            return names
    return [f"input_{i}" for i in range(n_inputs)]


def _forward_source(spec: CallSpec, input_names: list[str]) -> str:
    output_var = "output"
    while output_var in input_names:
        output_var = f"_{output_var}"
    call_args = ", ".join(_tensor_ref(ref, input_names, output_var) for ref in spec.args)
    items = [_tensor_ref(ref, input_names, output_var) for ref in spec.outputs]
    if spec.output_kind == "tensor":
        result = items[0]
    elif spec.output_kind == "tuple":
        result = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    else:
        result = "[" + ", ".join(items) + "]"
    params = ", ".join(["self", *input_names])
    return f"def forward({params}):\n    {output_var} = call([{call_args}])\n    return {result}\n"


def _bound_names(nodes: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def wrap_pair(program_source: str, entry_point: str, cleaned: CleanedCode, spec: CallSpec) -> str:
    """The full Triton-side program: cleaned kernels + `call` + `<entry_point>New(nn.Module)`, ruff-formatted."""
    if spec.output_kind not in _OUTPUT_KINDS or not spec.outputs:
        raise ExportError(Category.UNSUPPORTED, f"output structure {spec.output_kind!r} is not supported")
    if spec.output_kind == "tensor" and len(spec.outputs) != 1:
        raise ValueError("a tensor output has exactly one item")
    tree = ast.parse(program_source)
    classes = [c for c in find_module_classes(tree) if c.name == entry_point]
    if not classes:
        raise ExportError(Category.CAPTURE_FAILURE, f"program has no class {entry_point}")
    original = classes[0]
    program_imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    helpers = [
        n
        for n in tree.body
        if not isinstance(n, (ast.Import, ast.ImportFrom))
        and n is not original
        and not (isinstance(n, ast.FunctionDef) and n.name in _PROGRAM_FUNCTIONS)
        and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))  # module docstring
    ]
    cleaned_imports = [n for n in cleaned.module.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    cleaned_rest = [n for n in cleaned.module.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    clash = (_bound_names(helpers) | {entry_point, new_class_name(entry_point)}) & _bound_names(cleaned_rest)
    if clash:
        raise ExportError(Category.UNSUPPORTED, f"program names clash with generated code: {sorted(clash)}")

    forward = next(
        (n for n in original.body if isinstance(n, ast.FunctionDef) and n.name == "forward"),
        None,
    )
    input_names = _forward_input_names(forward, spec.n_inputs)
    new_forward = ast.parse(_forward_source(spec, input_names)).body[0]
    new_class = copy.copy(original)  # same name, bases and decorators; renamed to ...New below
    new_class.body = [n for n in original.body if n is not forward] + [new_forward]
    module = ast.fix_missing_locations(
        ast.Module(
            body=[*cleaned_imports, *program_imports, *cleaned_rest, *helpers, new_class], type_ignores=[]
        )
    )
    source = rename_class(cleaned.render(module), entry_point, new_class_name(entry_point))
    return format_python(source)
