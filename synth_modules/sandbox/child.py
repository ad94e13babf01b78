"""The per-program validation steps, run inside the isolated child process.

Cheap checks first, expensive last, each timed and each failure categorised: load -> construct -> inputs ->
eager twice (deterministic?) -> usable outputs -> expected shapes -> degenerate checks -> FLOPs ->
torch.compile -> compiled vs eager. `probe` runs only load -> construct -> inputs -> one eager forward and
reports the exception, for error-driven input deduction.

Everything here runs in a forked copy of a warm worker, so a program that patches torch only patches its
own copy. The checks run in the same process as the program, so they call the references `judges` bound
before any program existed, and every verdict is preceded by the sandbox's integrity check (integrity.py:
the modules and classes they rely on, and threads): a program that replaced one, or left a thread running,
is `unsafe_code`, whatever else it did. A forward that Dynamo
splits into several graphs is `graph_break` unless `SandboxOptions.allow_graph_breaks`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import time
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from synth_modules.program import split_init_inputs
from synth_modules.sandbox import degenerate, integrity, judges, kernel_batching
from synth_modules.sandbox.api import SandboxOptions, ValidationJob
from synth_modules.sandbox.judges import JUDGES
from synth_modules.sandbox.loading import execute_as_module
from synth_modules.types import Category, Stage, Verdict

PROGRAM_FILE = "program.py"
LOW_PRECISION = (torch.bfloat16, torch.float16)
_MESSAGE_LIMIT = 2000
_MEMORY_PATTERNS = re.compile(
    r"can't allocate memory|not enough memory|out of memory|cannot allocate memory|bad_alloc|"
    r"Cannot allocate memory|DefaultCPUAllocator",
    re.IGNORECASE,
)

Progress = Callable[[str], None]


class Rejected(Exception):
    """A categorised failure of one step."""

    def __init__(self, stage: Stage, category: Category, message: str, exc: BaseException | None = None):
        super().__init__(message)
        self.stage = stage
        self.category = category
        self.message = message
        self.exc = exc


def is_memory_error(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or bool(_MEMORY_PATTERNS.search(str(exc)))


def describe(exc: BaseException, program_path: str = PROGRAM_FILE) -> str:
    """`Type: message (program line N)`, truncated: what a repair prompt or a human needs."""
    text = f"{type(exc).__name__}: {exc}".strip()
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(program_path):
            line = frame.lineno
    if line is not None:
        text += f" (program line {line})"
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 3] + "..."
    return text


@contextmanager
def step(
    stage: Stage, category: Category, timings: dict[str, float], name: str, progress: Progress
) -> Iterator[None]:
    """Time one step and turn any exception into a categorised rejection (memory errors win)."""
    progress(name)
    start = time.perf_counter()
    try:
        yield
    except Rejected:
        raise
    except Exception as exc:  # the program's own code may raise anything
        if is_memory_error(exc):
            raise Rejected(stage, Category.MEMORY_LIMIT, describe(exc), exc) from exc
        raise Rejected(stage, category, describe(exc), exc) from exc
    except SystemExit as exc:
        raise Rejected(stage, category, f"program called exit({exc.code})", exc) from exc
    finally:
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 4)


def load_program(source: str, job_id: str, path: str = PROGRAM_FILE) -> types.ModuleType:
    """Execute the program as a fresh module (its file is written so tracebacks show its lines)."""
    with open(path, "w") as fh:
        fh.write(source)
    return execute_as_module(source, path, "synth_program_" + re.sub(r"\W", "_", job_id), register=True)


def resolve_entry(module: types.ModuleType, entry_point: str | None) -> type[torch.nn.Module]:
    if entry_point is not None:
        cls = module.__dict__.get(entry_point)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise Rejected(
                Stage.LOAD, Category.STRUCTURE_ERROR, f"'{entry_point}' is not an nn.Module subclass"
            )
        return cls
    candidates = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__
    ]
    leaves = [c for c in candidates if not any(o is not c and issubclass(o, c) for o in candidates)]
    if len(leaves) != 1:
        names = ", ".join(c.__name__ for c in leaves) or "none"
        raise Rejected(Stage.LOAD, Category.STRUCTURE_ERROR, f"cannot pick the entry-point class ({names})")
    return leaves[0]


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def make_inputs(module: types.ModuleType, seed: int, device: str) -> list[Any]:
    JUDGES.manual_seed(seed)
    inputs = module.get_inputs()
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"get_inputs() returned {type(inputs).__name__}, expected a list")
    problem = judges.foreign_tensor(inputs)
    if problem:
        raise Rejected(Stage.EAGER, Category.UNSAFE_CODE, f"get_inputs(): {problem}")
    return list(_map_tensors(list(inputs), lambda t: t.to(device)))


def _shape(value: Any) -> list[int]:
    return list(value.shape) if isinstance(value, torch.Tensor) else []


def _tensor_numel(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (list, tuple)):
        return sum(_tensor_numel(v) for v in value)
    return 0


def _integrity_baseline(device: str) -> integrity.Snapshot:
    """The snapshot a verdict is checked against, after torch's own first-use changes: Dynamo's patch of
    nn.Module (settle_torch) and, on a GPU, CUDA's lazy-init flags (the warm parent must not touch CUDA)."""
    integrity.settle_torch()
    if device.startswith("cuda"):
        with contextlib.suppress(Exception):  # a CUDA that fails here fails again, categorised, at `.to()`
            torch.cuda.init()
            torch.cuda.device_count()
    return integrity.Snapshot.take()


class ProgramRun:
    """State shared by the steps of one validation (module, model, inputs, outputs, timings)."""

    def __init__(self, job: ValidationJob, options: SandboxOptions, progress: Progress):
        self.job = job
        self.options = options
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.checks: dict[str, Any] = {}
        self.input_shapes: list[list[int]] = []
        self.output_shapes: list[list[int]] = []
        self.module: types.ModuleType | None = None
        self.model: torch.nn.Module | None = None
        self.inputs: list[Any] = []
        self.judged_with = _integrity_baseline(options.device)  # before the program is loaded

    def step(self, stage: Stage, category: Category, name: str):
        return step(stage, category, self.timings, name, self.progress)

    def forward(self, inputs: list[Any], model: Callable[..., Any] | None = None) -> list[torch.Tensor]:
        """One forward on fresh copies of `inputs` (a program may modify its inputs in place)."""
        fn = model if model is not None else self.model
        args = _map_tensors(inputs, lambda t: t.clone())
        outputs = JUDGES.flatten_outputs(fn(*args))  # type: ignore[misc]
        problem = judges.foreign_tensor(outputs)
        if problem:
            raise Rejected(Stage.EAGER, Category.UNSAFE_CODE, f"forward output: {problem}")
        # Copies the program never saw: it cannot rewrite the eager reference in place (through a reference it
        # kept) while the compiled run happens. clone() keeps autograd, which the dead-parameter check needs.
        return [o.clone() for o in outputs]

    def tampering(self) -> Rejected | None:
        """The program replaced something the checks rely on (checked before any verdict is given)."""
        problems = self.judged_with.problems()
        message = f"unsafe at runtime: {'; '.join(problems)}"
        return Rejected(Stage.SANDBOX, Category.UNSAFE_CODE, message) if problems else None

    # --- steps -------------------------------------------------------------------------------------------
    def load_and_build(self) -> None:
        job, device = self.job, self.options.device
        with self.step(Stage.LOAD, Category.EAGER_ERROR, "load"):
            try:
                self.module = load_program(job.source, job.id)
            except SyntaxError as exc:
                raise Rejected(Stage.LOAD, Category.SYNTAX_ERROR, describe(exc), exc) from exc
            except ImportError as exc:
                raise Rejected(Stage.LOAD, Category.IMPORT_ERROR, describe(exc), exc) from exc
            cls = resolve_entry(self.module, job.entry_point)
            for required in ("get_inputs", "get_init_inputs"):
                if not callable(getattr(self.module, required, None)):
                    raise Rejected(Stage.LOAD, Category.STRUCTURE_ERROR, f"missing function {required}()")
        with self.step(Stage.INIT, Category.INIT_ERROR, "init"):
            JUDGES.manual_seed(job.seed)
            args, kwargs = split_init_inputs(self.module.get_init_inputs())
            self.model = cls(*args, **kwargs).to(device).eval()
            self.checks["num_params"] = sum(p.numel() for p in self.model.parameters())
        with self.step(Stage.EAGER, Category.EAGER_ERROR, "inputs"):
            self.inputs = make_inputs(self.module, job.seed, device)
            self.input_shapes = [_shape(x) for x in self.inputs]
            self.checks["input_numel"] = _tensor_numel(self.inputs)

    def eager(self) -> list[torch.Tensor]:
        with self.step(Stage.EAGER, Category.EAGER_ERROR, "eager"), JUDGES.no_grad():
            first = self.forward(self.inputs)
            second = self.forward(self.inputs)
        self.output_shapes = [list(o.shape) for o in first]
        self.checks["output_numel"] = sum(o.numel() for o in first)
        if not JUDGES.identical(first, second):
            raise Rejected(
                Stage.EAGER, Category.NONDETERMINISTIC, "two eager runs on identical inputs differ"
            )
        return first

    def check_outputs(self, outputs: list[torch.Tensor]) -> None:
        expected = self.job.expected_output_shapes
        if self.options.degenerate_checks:
            problem = degenerate.empty_or_nonfinite(outputs)
        else:
            problem = next((f"output {i} is empty" for i, o in enumerate(outputs) if o.numel() == 0), None)
        if problem:
            raise Rejected(Stage.DEGENERATE, Category.DEGENERATE_OUTPUT, problem)
        if expected is not None and [list(s) for s in expected] != self.output_shapes:
            raise Rejected(
                Stage.SHAPE,
                Category.SHAPE_ERROR,
                f"output shapes {self.output_shapes} != expected {expected}",
            )
        if not self.options.degenerate_checks:
            return
        with self.step(Stage.DEGENERATE, Category.EAGER_ERROR, "degenerate"):
            problem = degenerate.constant_or_zero(outputs)
            if problem is None:
                other_inputs = make_inputs(self.module, self.job.seed + 1, self.options.device)  # type: ignore[arg-type]
                with JUDGES.no_grad():
                    other = self.forward(other_inputs)
                problem = degenerate.input_independent(outputs, other)
            if problem is None:
                problem = self._parameter_check()
        if problem:
            raise Rejected(Stage.DEGENERATE, Category.DEGENERATE_OUTPUT, problem)

    def _parameter_check(self) -> str | None:
        """Dead-parameter check; skipped (not failed) when backward itself fails, since only forward matters."""
        try:
            return degenerate.dead_parameters(self.model, lambda: self.forward(self.inputs))  # type: ignore[arg-type]
        except Exception as exc:
            if is_memory_error(exc):
                raise
            self.checks["param_check"] = f"skipped: {type(exc).__name__}"
            return None

    def count_flops(self) -> None:
        start = time.perf_counter()
        try:
            with JUDGES.no_grad(), FlopCounterMode(display=False) as counter:
                self.forward(self.inputs)
            self.checks["flops"] = int(counter.get_total_flops())
        except Exception:  # FLOPs are informative only; an op the counter does not know must not reject
            self.checks["flops"] = None
        self.timings["flops"] = round(time.perf_counter() - start, 4)

    def compile_and_compare(self, eager_outputs: list[torch.Tensor]) -> None:
        counters = torch._dynamo.utils.counters
        breaks_before = sum(counters["graph_break"].values())
        kernels_before = kernel_batching.STATS.snapshot()
        graphs: list[int] = []  # counted by our own backend wrapper, which the program cannot reach
        real_backend = JUDGES.lookup_backend(self.options.compile_backend)

        def counting_backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
            graphs.append(len(gm.graph.nodes))
            return real_backend(gm, example_inputs)

        with self.step(Stage.COMPILE, Category.COMPILE_ERROR, "compile"), JUDGES.no_grad():
            compiled = JUDGES.compile(self.model, backend=counting_backend)
            got = self.forward(self.inputs, compiled)
        self.checks["graph_count"] = len(graphs)
        self.checks["graph_breaks"] = sum(counters["graph_break"].values()) - breaks_before
        if len(graphs) != 1 and not self.options.allow_graph_breaks:
            what = "no graph (forward ran eagerly)" if not graphs else f"{len(graphs)} graphs"
            raise Rejected(Stage.COMPILE, Category.GRAPH_BREAK, f"Dynamo captured {what}")
        if kernel_batching.installed():
            after = kernel_batching.STATS.snapshot()
            self.checks["cpp_kernels"] = after["kernels"] - kernels_before["kernels"]
            self.checks["cpp_builds"] = after["builds"] - kernels_before["builds"]
        low = any(o.dtype in LOW_PRECISION for o in got)
        with self.step(Stage.COMPARE, Category.MISMATCH, "compare"):
            reference = self.upcast_reference(got, torch.float32) if low else eager_outputs
            result = JUDGES.compare(reference, got)
        self.checks["reference"] = "float32" if low else "eager"
        self.checks["max_abs_err"] = result.max_abs_error
        self.checks["rel_err"] = result.max_rel_error
        if result.shape_mismatch:
            raise Rejected(Stage.SHAPE, Category.SHAPE_ERROR, f"compiled vs eager: {result.reason}")
        if not result.ok:
            against = "float32 reference" if low else "eager"
            raise Rejected(Stage.COMPARE, Category.MISMATCH, f"compiled vs {against}: {result.reason}")
        if self.options.fp64_reference:
            self.compare_fp64(got)

    def upcast_reference(self, like: list[torch.Tensor], dtype: torch.dtype) -> list[torch.Tensor]:
        """An eager run of a `dtype` copy of the model on `dtype` copies of the inputs, cast back to `like`'s
        dtypes: the reference a low-precision compiled output is held to (its eager twin rounds every op)."""
        with JUDGES.no_grad():
            model = copy.deepcopy(self.model).to(dtype)
            inputs = _map_tensors(self.inputs, lambda t: t.to(dtype) if t.is_floating_point() else t)
            reference = self.forward(inputs, model)
        return [r.to(c.dtype) if r.is_floating_point() else r for r, c in zip(reference, like, strict=False)]

    def compare_fp64(self, compiled_outputs: list[torch.Tensor]) -> None:
        """Compiled float32 outputs vs an eager float64 copy of the model and inputs, cast back to float32."""
        try:
            with JUDGES.no_grad():
                reference_model = copy.deepcopy(self.model).double()
                inputs64 = _map_tensors(self.inputs, lambda t: t.double() if t.is_floating_point() else t)
                reference = self.forward(inputs64, reference_model)
        except Exception as exc:
            if is_memory_error(exc):
                raise
            self.checks["fp64_reference"] = f"skipped: {type(exc).__name__}"
            return
        reference = [
            r.to(c.dtype) if r.is_floating_point() else r
            for r, c in zip(reference, compiled_outputs, strict=False)
        ]
        with self.step(Stage.COMPARE, Category.MISMATCH, "compare_fp64"):
            result = JUDGES.compare(reference, compiled_outputs)
        self.checks["fp64_reference"] = "ok" if result.ok else "mismatch"
        self.checks["fp64_max_abs_err"] = result.max_abs_error
        if not result.ok:
            raise Rejected(Stage.COMPARE, Category.MISMATCH, f"compiled vs fp64 reference: {result.reason}")

    def verdict(self, ok: bool, stage: Stage, category: Category | None = None, message: str = "") -> Verdict:
        self.timings["total"] = round(sum(v for k, v in self.timings.items() if k != "total"), 4)
        checks = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.checks.items()
        }
        return Verdict(
            ok=ok,
            stage=str(stage),
            category=None if category is None else str(category),
            message=message,
            input_shapes=self.input_shapes,
            output_shapes=self.output_shapes,
            timings=self.timings,
            checks=checks,
        )


def _rejection(run: ProgramRun, exc: Rejected) -> Verdict:
    exc = run.tampering() or exc  # a forged check outranks whatever the checks concluded
    if exc.exc is not None:
        run.checks["exception_type"] = type(exc.exc).__name__
    return run.verdict(False, exc.stage, exc.category, exc.message)


def validate(job: ValidationJob, options: SandboxOptions, progress: Progress) -> Verdict:
    """The full validation of one program."""
    run = ProgramRun(job, options, progress)
    try:
        run.load_and_build()
        outputs = run.eager()
        run.check_outputs(outputs)
        run.count_flops()
        if options.compile:
            run.compile_and_compare(outputs)
        forged = run.tampering()
        if forged:
            raise forged
    except Rejected as exc:
        return _rejection(run, exc)
    return run.verdict(True, Stage.DONE)


def probe(job: ValidationJob, options: SandboxOptions, progress: Progress) -> Verdict:
    """Load, construct, make inputs and run one eager forward; report the first exception, no other checks.

    On failure `checks` holds `exception_type` and `exception_message` (the bare `str(exc)`), which is what
    error-driven input deduction parses; on success `output_shapes` holds the forward's output shapes.
    """
    run = ProgramRun(job, options, progress)
    try:
        run.load_and_build()
        with run.step(Stage.EAGER, Category.EAGER_ERROR, "eager"), JUDGES.no_grad():
            outputs = run.forward(run.inputs)
        run.output_shapes = [list(o.shape) for o in outputs]
        forged = run.tampering()
        if forged:
            raise forged
    except Rejected as exc:
        if exc.exc is not None:
            run.checks["exception_message"] = str(exc.exc)[:_MESSAGE_LIMIT]
        return _rejection(run, exc)
    return run.verdict(True, Stage.DONE)


def run_job(job: ValidationJob, options: SandboxOptions, progress: Progress) -> Verdict:
    """Dispatch on the job's mode (`job.extra["mode"]`: "validate", the default, or "probe")."""
    mode = job.extra.get("mode", "validate")
    if mode == "probe":
        return probe(job, options, progress)
    return validate(job, options, progress)
