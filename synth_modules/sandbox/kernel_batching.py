"""Build all C++ kernels of one Inductor graph as a single shared library.

Inductor's CPU backend runs g++ once per fused kernel. Most of a run is fixed cost, not the kernel: loading
the precompiled header, instantiating the templates that `cpp_prefix.h` leaves pending (about 0.6 s on the
development box even for an empty file), and linking against libtorch (about 0.2 s). A composed program
fuses into ~2 kernels, so that fixed cost was paid twice per program. Batching pays it once.

How: the generated output module registers each kernel with `AsyncCompile.cpp_pybinding(argtypes, source)`
and ends with `AsyncCompile.wait(globals())`. While `install()` is in effect, `cpp_pybinding` only records
the kernel and returns a `PendingKernel`; `wait` puts every recorded kernel of that module, each in its own
C++ namespace, into one translation unit with one Python binding per kernel, builds it through Inductor's own
`CppPythonBindingsCodeCache.load_async` (same flags, same precompiled header, same cache) and replaces each
`PendingKernel` in the module's globals with its compiled function. The kernel code itself is untouched, so
the numbers it computes are Inductor's.

Anything unexpected falls back to Inductor's own per-kernel build, so batching can cost time but never
change a verdict: a kernel whose source does not have the one `extern "C" void kernel(` entry Inductor
writes, an argument type the binding does not know, or a batch that fails to compile (then every kernel is
rebuilt alone, and a real compile error surfaces from Inductor's own build, with Inductor's own message).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

_ENTRY = re.compile(r'extern\s+"C"\s+void\s+kernel\s*\(')
_SCALAR_PARSERS = {
    "int64_t": "synth_batch::as_int64",
    "uintptr_t": "synth_batch::as_uintptr",
    "float": "synth_batch::as_float",
}
_MODULE_ENTRY = "kernel"  # Inductor loads the library as `<key>.kernel`, so its init must be PyInit_kernel

_BINDING_PRELUDE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

namespace synth_batch {
// Set at module init from the address Inductor publishes in _TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR.
static void* (*tensor_data)(PyObject*) = nullptr;

static inline void* as_pointer(PyObject* args, Py_ssize_t i) {
    return tensor_data(PyTuple_GET_ITEM(args, i));
}
static inline int64_t as_int64(PyObject* args, Py_ssize_t i) {
    Py_ssize_t value = PyLong_AsSsize_t(PyTuple_GET_ITEM(args, i));
    if (value == -1 && PyErr_Occurred()) throw std::runtime_error("expected an int argument");
    return value;
}
static inline uintptr_t as_uintptr(PyObject* args, Py_ssize_t i) {
    void* value = PyLong_AsVoidPtr(PyTuple_GET_ITEM(args, i));
    if (value == reinterpret_cast<void*>(-1) && PyErr_Occurred())
        throw std::runtime_error("expected an int argument");
    return reinterpret_cast<uintptr_t>(value);
}
static inline float as_float(PyObject* args, Py_ssize_t i) {
    double value = PyFloat_AsDouble(PyTuple_GET_ITEM(args, i));
    if (value == -1.0 && PyErr_Occurred()) throw std::runtime_error("expected a float argument");
    return static_cast<float>(value);
}
static inline bool check_arity(PyObject* args, Py_ssize_t expected) {
    if (!PyTuple_CheckExact(args) || PyTuple_GET_SIZE(args) != expected) {
        PyErr_Format(PyExc_TypeError, "expected a tuple of %zd arguments", expected);
        return false;
    }
    return true;
}
}  // namespace synth_batch
"""

_BINDING_INIT = r"""
PyMODINIT_FUNC PyInit_kernel(void) {
    const char* text = std::getenv("_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR");
    if (text == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR is not set");
        return nullptr;
    }
    errno = 0;
    char* end = nullptr;
    uintptr_t address = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || address == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot parse _TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR");
        return nullptr;
    }
    synth_batch::tensor_data = reinterpret_cast<void* (*)(PyObject*)>(address);
    return PyModule_Create(&synth_batch_module);
}
"""


@dataclasses.dataclass
class BatchStats:
    """What batching did in this process: read by the sandbox child into the verdict's checks."""

    kernels: int = 0  # kernels Inductor asked for
    builds: int = 0  # g++ builds that produced them (batched or alone)
    fallbacks: int = 0  # batches that had to be rebuilt kernel by kernel

    def snapshot(self) -> dict[str, int]:
        return dataclasses.asdict(self)


STATS = BatchStats()


@dataclasses.dataclass
class _Kernel:
    argtypes: list[str]
    source: str


@dataclasses.dataclass
class _Batch:
    """The kernels one output module registered, built together on first need."""

    kernels: list[_Kernel] = dataclasses.field(default_factory=list)
    functions: list[Callable[..., Any]] | None = None

    def function(self, index: int) -> Callable[..., Any]:
        if self.functions is None:
            self.functions = _build(self.kernels)
        return self.functions[index]


class PendingKernel:
    """Stands in for a kernel until its batch is built; `wait` swaps it for the real function."""

    def __init__(self, batch: _Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def resolve(self) -> Callable[..., Any]:
        return self.batch.function(self.index)

    def __call__(self, *args: Any) -> Any:  # only reached if a caller skipped `wait`
        return self.resolve()(*args)


def _batchable(kernel: _Kernel) -> bool:
    if len(_ENTRY.findall(kernel.source)) != 1:
        return False
    return all(t.strip().endswith("*") or t.strip() in _SCALAR_PARSERS for t in kernel.argtypes)


def _argument(argtype: str, index: int) -> str:
    argtype = argtype.strip()
    if argtype.endswith("*"):
        return f"static_cast<{argtype}>(synth_batch::as_pointer(args, {index}))"
    return f"{_SCALAR_PARSERS[argtype]}(args, {index})"


def merged_source(kernels: Sequence[_Kernel]) -> str:
    """One translation unit: shared includes first, then each kernel in namespace `k<i>`, then bindings."""
    includes: dict[str, None] = {}
    bodies: list[str] = []
    for index, kernel in enumerate(kernels):
        lines = []
        for line in kernel.source.splitlines():
            if line.lstrip().startswith("#include"):
                includes.setdefault(line.strip())
            else:
                lines.append(line)
        body = _ENTRY.sub("void kernel(", "\n".join(lines), count=1)
        bodies.append(f"namespace k{index} {{\n{body}\n}}  // namespace k{index}\n")
    wrappers, methods = [], []
    for index, kernel in enumerate(kernels):
        call = ", ".join(_argument(t, i) for i, t in enumerate(kernel.argtypes))
        wrappers.append(
            f"static PyObject* kernel_{index}_py(PyObject*, PyObject* args) {{\n"
            f"    if (!synth_batch::check_arity(args, {len(kernel.argtypes)})) return nullptr;\n"
            f"    try {{ k{index}::kernel({call}); }}\n"
            "    catch (std::exception const& e) { PyErr_SetString(PyExc_RuntimeError, e.what()); return nullptr; }\n"
            '    catch (...) { PyErr_SetString(PyExc_RuntimeError, "unhandled C++ exception"); return nullptr; }\n'
            "    Py_RETURN_NONE;\n}\n"
        )
        methods.append(f'    {{"kernel_{index}", kernel_{index}_py, METH_VARARGS, nullptr}},\n')
    table = (
        "static PyMethodDef synth_batch_methods[] = {\n"
        + "".join(methods)
        + "    {nullptr, nullptr, 0, nullptr}};\n"
        + "static struct PyModuleDef synth_batch_module = "
        + f'{{PyModuleDef_HEAD_INIT, "{_MODULE_ENTRY}", nullptr, -1, synth_batch_methods}};\n'
    )
    return "\n".join(["\n".join(includes), *bodies, _BINDING_PRELUDE, *wrappers, table, _BINDING_INIT])


def _build_alone(kernel: _Kernel) -> Callable[..., Any]:
    from torch._inductor.codecache import CppPythonBindingsCodeCache

    STATS.builds += 1
    return CppPythonBindingsCodeCache.load_pybinding(kernel.argtypes, kernel.source)


def _build(kernels: list[_Kernel]) -> list[Callable[..., Any]]:
    from torch._inductor.codecache import CppPythonBindingsCodeCache

    if len(kernels) < 2 or not all(_batchable(k) for k in kernels):
        return [_build_alone(k) for k in kernels]
    try:
        STATS.builds += 1
        library = CppPythonBindingsCodeCache.load_async(merged_source(kernels), "cpu")()
        return [getattr(library, f"kernel_{i}") for i in range(len(kernels))]
    except Exception:
        STATS.fallbacks += 1
        return [_build_alone(k) for k in kernels]


def installed() -> bool:
    try:
        from torch._inductor.async_compile import AsyncCompile
    except ImportError:
        return False
    return bool(getattr(AsyncCompile, "_synth_batching", False))


def install() -> bool:
    """Route Inductor's C++ kernel builds through batches; False (and nothing changed) if torch lacks the hooks.

    Meant for the sandbox worker, before it warms up: every forked child inherits the patched class. Kernels
    are then built when the module calls `wait`, one g++ run per module, never in Inductor's compile-worker
    pool (the sandbox runs with `compile_threads == 1` anyway).
    """
    try:
        from torch._inductor.async_compile import AsyncCompile
        from torch._inductor.codecache import CppPythonBindingsCodeCache
    except ImportError:
        return False
    if installed():
        return True
    if not all(hasattr(c, n) for c, n in ((AsyncCompile, "cpp_pybinding"), (AsyncCompile, "wait"))):
        return False
    if not hasattr(CppPythonBindingsCodeCache, "load_async"):
        return False
    stock_wait = AsyncCompile.wait

    def cpp_pybinding(self: Any, argtypes: list[str], source_code: str) -> PendingKernel:
        batch = self.__dict__.setdefault("_synth_batch", _Batch())
        if batch.functions is not None:  # a kernel registered after the batch was built: start a new one
            batch = self.__dict__["_synth_batch"] = _Batch()
        batch.kernels.append(_Kernel(list(argtypes), source_code))
        STATS.kernels += 1
        return PendingKernel(batch, len(batch.kernels) - 1)

    @functools.wraps(stock_wait)
    def wait(self: Any, scope: dict[str, Any]) -> None:
        for name, value in list(scope.items()):
            if isinstance(value, PendingKernel):
                scope[name] = value.resolve()
        stock_wait(self, scope)

    AsyncCompile.cpp_pybinding = cpp_pybinding
    AsyncCompile.wait = wait
    AsyncCompile._synth_batching = True
    return True
