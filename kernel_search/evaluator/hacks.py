"""Reward-hack screening: a registry of small named source checks, and runtime integrity snapshots.

Static checks read the candidate's source (AST and string literals, so inline CUDA/C++ is seen too) and each
returns a reason or None; STRICT checks reject the candidate as `reward_hack` with the check's kind, WARNINGS
only add a flag. Runtime checks use the sandbox's integrity snapshot (sandbox/integrity.py): the timing,
synchronisation and comparison functions are the originals and the candidate left no thread or process
running; this module names what they find as PATCHED_TIMING or BACKGROUND_THREAD. The runtime kinds detected elsewhere (stale
memory, pointer caches, aliasing...) are named here too, so every kind lives in one list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from synth_modules.sandbox import integrity

# --- hack kinds -----------------------------------------------------------------------------------------------
STALE_MEMORY = "stale_memory"  # returned uninitialised (poisoned) memory
POINTER_CACHE = "pointer_cache"  # wrong once new data is written into the same input buffers
EARLY_EXIT = "early_exit"  # wrong once called many times (skips work on repeated calls)
CONSTANT_OUTPUT = "constant_output"  # the same output whatever the input
UNSYNCED_STREAM = "unsynced_stream"  # results not ready when forward returns (work left on another stream)
SIDE_STREAM = "side_stream"  # creates or switches CUDA streams
OUTPUT_ALIASING = "output_aliasing"  # an output shares memory with an input or a weight
INPUT_MUTATION = "input_mutation"  # forward wrote into its inputs
CALLS_REFERENCE = "calls_reference"  # uses the task's Model
TRY_EXCEPT_FALLBACK = "try_except_fallback"  # catches its own failure and does something else
PRECISION_DOWNCAST = "precision_downcast"  # right only at half precision on a full-precision task
PATCHED_TIMING = "patched_timing"  # replaced torch / time / clock functions
BACKGROUND_THREAD = "background_thread"  # started threads or processes
TENSOR_SUBCLASS = "tensor_subclass"  # returns a Tensor subclass (lazy values, overridden comparisons)
DYNAMIC_CODE = "dynamic_code"  # exec/eval/import tricks that hide code from these checks
PRECISION_CAST = "precision_cast"  # warning: casts to half precision somewhere

_MODULE_ROOTS = frozenset(
    {"torch", "time", "triton", "numpy", "np", "builtins", "os", "sys", "gc", "threading", "ctypes", "math"}
)
_THREAD_MODULES = ("threading", "_thread", "concurrent", "multiprocessing", "asyncio", "subprocess", "signal")
_DYNAMIC_CALLS = frozenset({"exec", "eval", "compile", "__import__", "globals", "vars", "breakpoint"})
_DYNAMIC_MODULES = ("importlib", "inspect", "gc", "ctypes", "pickle", "marshal", "runpy")
_STREAM_TEXT = re.compile(r"cudaStreamCreate|cudaStreamBeginCapture|cudaLaunchHostFunc|getStreamFromPool")
_THREAD_TEXT = re.compile(r"std::thread|pthread_create|std::async|fork\s*\(")
_TASK_CLASS = "Model"

Check = Callable[[ast.Module, str], "str | None"]


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str


def _strings(tree: ast.Module) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _module_aliases(tree: ast.Module) -> set[str]:
    """Names bound to modules by imports (`import time as t` -> t), plus the usual roots."""
    names = set(_MODULE_ROOTS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {a.asname or a.name for a in node.names if a.name[:1].islower()}
    return names


def check_try_except(tree: ast.Module, source: str) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler):
            doing = [n for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Call, ast.Return))]
            if not all(isinstance(stmt, ast.Raise) for stmt in node.body) and doing:
                return f"line {node.lineno}: an except handler that does work instead of re-raising"
    return None


def check_reference_use(tree: ast.Module, source: str) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == _TASK_CLASS:
            return f"line {node.lineno}: uses the task's {_TASK_CLASS}"
        if isinstance(node, ast.Constant) and node.value in (_TASK_CLASS, "__main__"):
            return f"line {node.lineno}: names {node.value!r} in a string"
    return None


def check_streams(tree: ast.Module, source: str) -> str | None:
    for node in ast.walk(tree):
        name = _dotted(node) if isinstance(node, ast.Attribute) else ""
        leaf = name.rsplit(".", 1)[-1]
        if leaf in {
            "Stream",
            "ExternalStream",
            "stream",
            "set_stream",
            "StreamContext",
            "graph",
            "CUDAGraph",
        }:
            return f"line {node.lineno}: {name}"
    text = "\n".join(_strings(tree))
    match = _STREAM_TEXT.search(text)
    return f"inline code calls {match.group(0)}" if match else None


def _imported(node: ast.AST) -> list[str]:
    """The modules an import statement names (empty for any other node)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def check_threads(tree: ast.Module, source: str) -> str | None:
    for node in ast.walk(tree):
        for module in _imported(node):
            if module.split(".")[0] in _THREAD_MODULES:
                return f"line {node.lineno}: imports {module}"
        if isinstance(node, ast.Attribute) and _dotted(node) in {
            "os.fork",
            "os.spawnv",
            "os.system",
            "os.popen",
        }:
            return f"line {node.lineno}: {_dotted(node)}"
    match = _THREAD_TEXT.search("\n".join(_strings(tree)))
    return f"inline code uses {match.group(0)}" if match else None


def check_patching(tree: ast.Module, source: str) -> str | None:
    modules = _module_aliases(tree)
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        for target in targets:
            root = _dotted(target).split(".")[0]
            if isinstance(target, ast.Attribute) and root in modules:
                return f"line {node.lineno}: assigns {_dotted(target)}"
        if (
            (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"setattr", "delattr"}
            )
            and node.args
            and _dotted(node.args[0]).split(".")[0] in modules | {"type"}
        ):
            return f"line {node.lineno}: {node.func.id} on {_dotted(node.args[0])}"
        if isinstance(node, ast.Name) and node.id in {"__builtins__", "builtins"}:
            return f"line {node.lineno}: touches {node.id}"
    return None


def check_tensor_subclass(tree: ast.Module, source: str) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {_dotted(b).rsplit(".", 1)[-1] for b in node.bases}
            if bases & {"Tensor", "_TensorBase", "TensorBase"}:
                return f"line {node.lineno}: class {node.name} subclasses Tensor"
        if isinstance(node, ast.FunctionDef) and node.name in {"__torch_function__", "__torch_dispatch__"}:
            return f"line {node.lineno}: defines {node.name}"
        if isinstance(node, ast.Attribute) and node.attr in {"_make_subclass", "_make_wrapper_subclass"}:
            return f"line {node.lineno}: {node.attr}"
    return None


def check_dynamic_code(tree: ast.Module, source: str) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS:
            return f"line {node.lineno}: calls {node.func.id}()"
        for module in _imported(node):
            if module.split(".")[0] in _DYNAMIC_MODULES:
                return f"line {node.lineno}: imports {module}"
        if isinstance(node, ast.Attribute) and _dotted(node) in {"sys.modules", "sys._getframe"}:
            return f"line {node.lineno}: {_dotted(node)}"
    return None


def check_precision_casts(tree: ast.Module, source: str) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"half", "bfloat16", "float16", "float8_e4m3fn"}:
            return f"line {node.lineno}: {_dotted(node) or node.attr}"
    return None


# name -> (kind, check). Order matters only for which reason is reported first.
STRICT: dict[str, tuple[str, Check]] = {
    "reference_use": (CALLS_REFERENCE, check_reference_use),
    "patched_functions": (PATCHED_TIMING, check_patching),
    "dynamic_code": (DYNAMIC_CODE, check_dynamic_code),
    "try_except_fallback": (TRY_EXCEPT_FALLBACK, check_try_except),
    "streams": (SIDE_STREAM, check_streams),
    "threads": (BACKGROUND_THREAD, check_threads),
    "tensor_subclass": (TENSOR_SUBCLASS, check_tensor_subclass),
}
WARNINGS: dict[str, tuple[str, Check]] = {"precision_casts": (PRECISION_CAST, check_precision_casts)}


def scan_source(source: str) -> tuple[Finding | None, list[Finding]]:
    """(the first strict finding or None, every warning). A source that does not parse has no findings."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None, []
    strict = next(
        (
            Finding(kind, f"{name}: {reason}")
            for name, (kind, check) in STRICT.items()
            if (reason := check(tree, source))
        ),
        None,
    )
    warnings = [
        Finding(kind, f"{name}: {reason}")
        for name, (kind, check) in WARNINGS.items()
        if (reason := check(tree, source))
    ]
    return strict, warnings


# --- runtime integrity ------------------------------------------------------------------------------------------
# Beyond the sandbox's watched namespaces (torch, time, builtins, os, Tensor, nn.Module, cuda.Event...): the
# profiler, device-wide sync and the evaluator's own bound clocks and comparisons.
WATCHED_MODULES = (
    "torch.profiler",
    "torch._C",
    "kernel_search.evaluator.timing",
    "kernel_search.evaluator.correctness",
)


def integrity_snapshot() -> integrity.Snapshot:
    """Taken right before the candidate is loaded (the sandbox's one mechanism, sandbox/integrity.py)."""
    return integrity.Snapshot.take(WATCHED_MODULES)


def runtime_finding(snapshot: integrity.Snapshot) -> Finding | None:
    """The first function replaced or thread started since `snapshot`, as the hack kind it is, else None."""
    changed = snapshot.changed()
    if changed:
        return Finding(PATCHED_TIMING, f"replaced after the candidate ran: {'; '.join(changed)}")
    threads = snapshot.new_threads()
    if threads:
        return Finding(BACKGROUND_THREAD, f"{threads} thread(s) left running by the candidate")
    return None


def leftover_finding(problems: list[str]) -> Finding | None:
    """What the sandbox service found after the candidate's reply (processes it killed, patches), or None."""
    if not problems:
        return None
    kind = BACKGROUND_THREAD if all(integrity.is_leftover(p) for p in problems) else PATCHED_TIMING
    return Finding(kind, f"after its evaluation the candidate's worker had: {'; '.join(problems)}"[:2000])
