"""Turn Inductor's captured output code into plain Triton: kernels, launches and one `call(args)` function.

What goes: the async-compile scaffolding, autotuning heuristics decorators, raw-stream and device-guard
plumbing, benchmark harness, comments. What changes: each `kernel.run(*args, stream=...)` becomes a direct
launch `kernel[grid](*args, XBLOCK=..., num_warps=..., num_stages=...)` with the configuration Inductor's
autotuner actually picked (recorded on the GPU as `KernelLaunch`), so the result runs with Triton alone.

This module is pure text/AST work (no GPU), so it is tested on CPU against committed GPU captures.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import asdict, dataclass, field
from typing import Any

from synth_modules.export.errors import ExportError
from synth_modules.types import Category

# Names bound by Inductor's scaffolding imports; nothing in a cleaned module may use them.
_SCAFFOLD_NAMES = frozenset(
    {
        "triton_heuristics",
        "get_raw_stream",
        "AsyncCompile",
        "run_intermediate_hooks",
        "maybe_profile",
        "start_graph",
        "end_graph",
        "AutotuneHint",
        "ReductionHint",
        "TileHint",
        "DeviceProperties",
        "align",
        "compiled_module_main",
    }
)
_DROPPED_FUNCTIONS = frozenset({"get_args", "benchmark_compiled_module"})
_DROPPED_ASSIGNS = frozenset({"async_compile", "runner", "call", "recursively_apply_fns"})
# Grid types whose launch grid follows from the numels and block sizes alone (Inductor's GridExpr family).
SUPPORTED_GRIDS = frozenset({"Grid1D", "Grid2D", "Grid3D", "Grid2DWithYZOverflow"})
_MAX_Y_GRID = 65535  # CUDA's limit on gridDim.y; Grid2DWithYZOverflow spills the rest into z


@dataclass(frozen=True)
class KernelLaunch:
    """The launch configuration one kernel ran with after autotuning (read from Inductor on the GPU)."""

    grid_type: str
    kwargs: dict[str, int]
    num_warps: int
    num_stages: int
    # Non-constexpr parameters Inductor specialised away (passed by keyword in the direct launch).
    constants: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelLaunch:
        return cls(
            grid_type=str(data["grid_type"]),
            kwargs={str(k): int(v) for k, v in data["kwargs"].items()},
            num_warps=int(data["num_warps"]),
            num_stages=int(data["num_stages"]),
            constants=dict(data.get("constants", {})),
        )


@dataclass
class CleanedCode:
    """The cleaned module as an AST (wrap.py appends the nn.Module) plus what the wrapper needs to know."""

    module: ast.Module
    kernel_names: list[str]
    call_arg_count: int
    # ast.unparse writes `k[(4,)]` as `k[4,]`; launch grids are placeholders until rendered as tuples.
    grids: dict[str, str] = field(default_factory=dict)

    def render(self, module: ast.Module | None = None) -> str:
        """Source text of `module` (default: the cleaned module) with the launch grids filled in."""
        text = ast.unparse(module or self.module)
        for placeholder, grid in self.grids.items():
            text = text.replace(placeholder, grid)
        return text

    @property
    def source(self) -> str:
        return self.render()


def _cdiv(a: int, b: int) -> int:
    return -(a // -b)


def launch_grid(grid_type: str, numels: dict[str, int], kwargs: dict[str, int]) -> tuple[int, ...]:
    """The grid Inductor's launcher computes for `grid_type`, as integers (trailing 1s dropped)."""
    if grid_type not in SUPPORTED_GRIDS:
        raise ExportError(Category.UNSUPPORTED, f"grid type {grid_type} has no static launch grid")

    def blocks(axis: str) -> int:
        numel = numels.get(f"{axis}numel")
        if numel is None:
            raise ExportError(Category.UNSUPPORTED, f"{grid_type} kernel lacks a static {axis}numel")
        return _cdiv(numel, kwargs.get(f"{axis.upper()}BLOCK", 1))

    grid = [blocks("x"), 1, 1]
    if grid_type in {"Grid2D", "Grid3D"}:
        grid[1] = blocks("y")
    if grid_type == "Grid3D":
        grid[2] = blocks("z")
    if grid_type == "Grid2DWithYZOverflow":
        y_raw = blocks("y")
        y_div = _cdiv(y_raw, _MAX_Y_GRID)
        grid[1] = 0 if y_div == 0 else _cdiv(y_raw, y_div)
        grid[2] = y_div
    while len(grid) > 1 and grid[-1] == 1:
        grid.pop()
    return tuple(grid)


_BLOCK_ORDER = ("XBLOCK", "YBLOCK", "ZBLOCK", "R0_BLOCK", "R1_BLOCK")


def _block_order(item: tuple[str, int]) -> tuple[int, str]:
    """Launch keywords in a fixed order (x, y, z, r0, r1, then by name), whatever order they were recorded in."""
    name = item[0]
    return (_BLOCK_ORDER.index(name) if name in _BLOCK_ORDER else len(_BLOCK_ORDER), name)


def _is_constexpr(arg: ast.arg) -> bool:
    return arg.annotation is not None and ast.unparse(arg.annotation).endswith("constexpr")


def _is_triton_jit(node: ast.expr) -> bool:
    return ast.unparse(node) in {"triton.jit", "jit"}


def _drop_scaffold_names(node: ast.Import | ast.ImportFrom) -> ast.Import | ast.ImportFrom | None:
    """An import without the aliases that bind scaffolding names (None if nothing is left)."""
    kept = [
        alias for alias in node.names if (alias.asname or alias.name).split(".")[0] not in _SCAFFOLD_NAMES
    ]
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch._inductor.runtime.hints"):
        return None
    if not kept:
        return None
    clone = (
        ast.ImportFrom(node.module, kept, node.level)
        if isinstance(node, ast.ImportFrom)
        else ast.Import(kept)
    )
    return ast.fix_missing_locations(clone)


def _kernel_source(call: ast.Call) -> tuple[str, str] | None:
    """(name, source) when `call` is `async_compile.triton('name', '''source''', ...)`."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and ast.unparse(func.value) == "async_compile"):
        return None
    if func.attr != "triton":
        raise ExportError(Category.UNSUPPORTED, f"non-Triton kernel (async_compile.{func.attr}) in the graph")
    if len(call.args) < 2 or not all(
        isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args[:2]
    ):
        raise ExportError(
            Category.CAPTURE_FAILURE, "async_compile.triton call without literal name and source"
        )
    return call.args[0].value, call.args[1].value  # type: ignore[union-attr]


@dataclass
class _Kernel:
    name: str
    runtime_params: list[str]  # non-constexpr parameters, in the order `.run(...)` passes them
    nodes: list[ast.stmt]


def _parse_kernel(name: str, source: str, imports: list[ast.stmt]) -> _Kernel:
    tree = ast.parse(source)
    nodes: list[ast.stmt] = []
    params: list[str] | None = None
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kept = _drop_scaffold_names(node)
            if kept is not None:
                imports.append(kept)
        elif isinstance(node, ast.FunctionDef):
            jit = [d for d in node.decorator_list if _is_triton_jit(d)]
            if not jit:
                raise ExportError(
                    Category.UNSUPPORTED, f"kernel {name} defines a function without @triton.jit"
                )
            node.decorator_list = jit
            nodes.append(node)
            if node.name == name:
                params = [a.arg for a in node.args.args if not _is_constexpr(a)]
        elif isinstance(node, ast.Expr):
            continue  # triton_helpers.set_driver_to_gpu() and similar module-level calls
        else:
            nodes.append(node)
    if params is None:
        raise ExportError(Category.CAPTURE_FAILURE, f"kernel source {name} does not define {name}")
    return _Kernel(name=name, runtime_params=params, nodes=nodes)


def _call_function(node: ast.stmt) -> ast.FunctionDef | None:
    """The wrapper's `call(args)`: a module-level function (older Inductor) or `Runner.call` (newer)."""
    if isinstance(node, ast.FunctionDef) and node.name == "call":
        return node
    if isinstance(node, ast.ClassDef) and node.name == "Runner":
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "call":
                uses_self = any(
                    isinstance(n, ast.Name) and n.id == "self" for stmt in item.body for n in ast.walk(stmt)
                )
                if uses_self:
                    raise ExportError(
                        Category.UNSUPPORTED, "graph partitions (Runner state) are not supported"
                    )
                item.args.args = [a for a in item.args.args if a.arg != "self"]
                return item
    return None


class _LaunchRewriter(ast.NodeTransformer):
    """Rewrites the statements of `call`: direct kernel launches, no device guard or stream plumbing."""

    def __init__(self, kernels: dict[str, _Kernel], launches: dict[str, KernelLaunch]):
        self.kernels = kernels
        self.launches = launches
        self.launched: set[str] = set()
        self.grids: dict[str, str] = {}

    def _flatten(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            result = self.visit(stmt)
            if result is None:
                continue
            out.extend(result if isinstance(result, list) else [result])
        return out

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                setattr(node, name, self._flatten(stmts))
        return node

    def visit_With(self, node: ast.With) -> ast.AST | list[ast.stmt]:
        guards = [
            item
            for item in node.items
            if ast.unparse(item.context_expr).startswith("torch.cuda._DeviceGuard")
        ]
        if guards and len(guards) == len(node.items):
            return self._flatten(node.body)
        return self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> ast.AST | None:
        if isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "get_raw_stream":
            return None
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        if not isinstance(node.value, ast.Call):
            return node
        func = ast.unparse(node.value.func)
        if func in {"torch.cuda.set_device", "run_intermediate_hooks"}:
            return None
        target = node.value.func
        if (
            isinstance(target, ast.Attribute)
            and target.attr == "run"
            and isinstance(target.value, ast.Name)
            and target.value.id in self.kernels
        ):
            node.value = self._direct_launch(target.value.id, node.value)
        return node

    def _direct_launch(self, name: str, call: ast.Call) -> ast.Call:
        kernel = self.kernels[name]
        launch = self.launches.get(name)
        if launch is None:
            raise ExportError(Category.CAPTURE_FAILURE, f"no recorded launch configuration for {name}")
        extra = [k.arg for k in call.keywords if k.arg not in {"stream", "grid"}]
        if extra or any(isinstance(a, ast.Starred) for a in call.args):
            raise ExportError(Category.UNSUPPORTED, f"{name}.run has unexpected arguments {extra}")
        runtime = [p for p in kernel.runtime_params if p not in launch.constants]
        if len(runtime) != len(call.args):
            raise ExportError(
                Category.CAPTURE_FAILURE,
                f"{name}.run passes {len(call.args)} arguments for parameters {runtime}",
            )
        numels: dict[str, int] = {}
        for param, arg in zip(runtime, call.args, strict=True):
            if param in {"xnumel", "ynumel", "znumel"}:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, int)):
                    raise ExportError(
                        Category.UNSUPPORTED, f"{name}: {param} is not static ({ast.unparse(arg)})"
                    )
                numels[param] = arg.value
        grid = launch_grid(launch.grid_type, numels, launch.kwargs)
        keywords = [
            ast.keyword(arg=k, value=ast.Constant(v))
            for k, v in sorted(launch.kwargs.items(), key=_block_order)
        ]
        keywords += [ast.keyword(arg=k, value=ast.Constant(v)) for k, v in launch.constants.items()]
        keywords += [
            ast.keyword(arg="num_warps", value=ast.Constant(launch.num_warps)),
            ast.keyword(arg="num_stages", value=ast.Constant(launch.num_stages)),
        ]
        placeholder = f"__synth_grid_{len(self.grids)}__"
        self.grids[placeholder] = repr(grid)
        self.launched.add(name)
        launcher = ast.Subscript(ast.Name(name, ast.Load()), ast.Name(placeholder, ast.Load()), ast.Load())
        return ast.Call(launcher, list(call.args), keywords)


def _count_call_args(func: ast.FunctionDef) -> int:
    for stmt in func.body:
        if (
            isinstance(stmt, ast.Assign)
            and isinstance(stmt.value, ast.Name)
            and stmt.value.id == (func.args.args[0].arg if func.args.args else "args")
        ):
            target = stmt.targets[0]
            return len(target.elts) if isinstance(target, (ast.Tuple, ast.List)) else 1
    return 0


def _names_used(nodes: list[ast.stmt]) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


def _free_names(func: ast.FunctionDef, module_names: set[str]) -> set[str]:
    """Names `func` reads that nothing defines: Inductor passes graph constants to its module as attributes."""
    local = {a.arg for a in func.args.args} | {
        n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))
    }
    loaded = {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loaded - local - module_names - set(dir(builtins))


def clean_output_code(raw_code: str, launches: dict[str, KernelLaunch]) -> CleanedCode:
    """Clean one captured Inductor output module (see the module docstring for what changes)."""
    try:
        tree = ast.parse(raw_code)
    except SyntaxError as error:
        raise ExportError(Category.CAPTURE_FAILURE, f"captured code does not parse: {error}") from None
    imports: list[ast.stmt] = []
    aliases: list[ast.Assign] = []
    kernels: dict[str, _Kernel] = {}
    call_func: ast.FunctionDef | None = None
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kept = _drop_scaffold_names(node)
            if kept is not None:
                imports.append(kept)
            continue
        found = _call_function(node)
        if found is not None:
            call_func = found
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            source = _kernel_source(node.value)
            if source is not None:
                kernel_name, kernel_src = source
                kernels[kernel_name] = _parse_kernel(kernel_name, kernel_src, imports)
                continue
        if (
            isinstance(node, ast.Assign)
            and all(isinstance(t, ast.Name) for t in node.targets)
            and not {t.id for t in node.targets} & _DROPPED_ASSIGNS  # type: ignore[attr-defined]
        ):
            aliases.append(node)
        # Everything else (async_compile.wait, del, get_args, benchmark harness, __main__ guard) is scaffolding.
    if call_func is None:
        raise ExportError(Category.CAPTURE_FAILURE, "captured code has no call(args) function")
    if not kernels:
        raise ExportError(
            Category.UNSUPPORTED, "Inductor generated no Triton kernel (extern/aten calls only)"
        )
    missing = sorted(set(kernels) - set(launches))
    if missing:
        raise ExportError(Category.CAPTURE_FAILURE, f"no launch configuration recorded for {missing}")
    rewriter = _LaunchRewriter(kernels, launches)
    call_func.body = rewriter._flatten(call_func.body)
    call_func.decorator_list = []
    leftover = {"get_raw_stream", "stream0"} & _names_used([call_func])
    if leftover:
        raise ExportError(Category.CAPTURE_FAILURE, f"stream plumbing left in call(): {sorted(leftover)}")
    kernel_nodes = [node for kernel in kernels.values() for node in kernel.nodes]
    used = _names_used([call_func, *kernel_nodes])
    kept_aliases: list[ast.stmt] = []
    for alias in reversed(aliases):  # keep an alias only if something kept refers to it
        if {t.id for t in alias.targets} & used:  # type: ignore[attr-defined]
            kept_aliases.insert(0, alias)
            used |= _names_used([alias])
    unique_imports: dict[str, ast.stmt] = {}
    for node in imports:
        unique_imports.setdefault(ast.unparse(node), node)
    defined = {(a.asname or a.name).split(".")[0] for node in unique_imports.values() for a in node.names}  # type: ignore[attr-defined]
    defined |= {t.id for alias in kept_aliases for t in alias.targets} | set(kernels)  # type: ignore[attr-defined]
    free = _free_names(call_func, defined | set(rewriter.grids))
    if free:
        raise ExportError(Category.UNSUPPORTED, f"call() reads graph constants or globals {sorted(free)}")
    body: list[ast.stmt] = [*unique_imports.values(), *kept_aliases, *kernel_nodes, call_func]
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    return CleanedCode(
        module=module,
        kernel_names=[k for k in kernels if k in rewriter.launched] or list(kernels),
        call_arg_count=_count_call_args(call_func),
        grids=rewriter.grids,
    )
