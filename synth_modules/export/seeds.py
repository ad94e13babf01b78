"""export-seeds: accepted programs -> KernelBench-format task files for the kernel-optimization search.

Each task is `N_<EntryPoint>.py` with the class renamed to `Model` (through the AST), `get_inputs()` unchanged and
`get_init_inputs()` returning a flat positional list, as KernelBench's harness calls `Model(*get_init_inputs())`.
The KernelBook-style `[args, kwargs]` is flattened by binding it to `__init__`'s signature: every parameter up
to the last one given is passed positionally, defaults filling the gaps. index.json lists the tasks and the
programs that could not be converted, with the reason. Programs are imported only inside the sandbox
(`seed_init_job`, a task of sandbox/tasks.py); this process parses their answer as a literal.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.export.programs import init_inputs, load_programs
from synth_modules.program import declared_dtype, find_module_classes, rename_class
from synth_modules.run.store import atomic_write_json
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.sandbox.loading import import_file
from synth_modules.types import Verdict

INDEX_FILE = "index.json"
KERNELBENCH_CLASS = "Model"


class SeedError(ValueError):
    """A program that cannot be expressed as a KernelBench task (the message says why)."""


@dataclass
class SeedsExport:
    tasks: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def flat_init_inputs(cls: type, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """`cls(*args, **kwargs)` as `cls(*flat)`: kwargs bound to positional parameters in signature order."""
    signature = inspect.signature(cls.__init__)
    try:
        bound = signature.bind(None, *args, **kwargs)  # None stands in for self
    except TypeError as error:
        raise SeedError(f"get_init_inputs does not fit __init__: {error}") from None
    params = list(signature.parameters.values())[1:]
    last_given = max((i for i, p in enumerate(params) if p.name in bound.arguments), default=-1)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    flat: list[Any] = []
    for param in params[: last_given + 1]:
        if param.kind == inspect.Parameter.VAR_POSITIONAL:
            flat.extend(bound.arguments.get(param.name, ()))
        elif param.kind not in positional:
            raise SeedError(f"__init__ parameter {param.name} cannot be passed positionally")
        else:  # a parameter left out before a given one has a default (bind() enforces the required ones)
            flat.append(bound.arguments.get(param.name, param.default))
    return flat


def _literal(values: list[Any]) -> str:
    text = repr(values)
    try:
        if ast.literal_eval(text) != values:
            raise ValueError
    except (ValueError, SyntaxError):
        raise SeedError(f"init inputs are not plain literals: {text[:200]}") from None
    return text


def seed_source(source: str, entry_point: str, flat: list[Any]) -> str:
    """The program as a KernelBench task: class `Model`, flat `get_init_inputs()`."""
    tree = ast.parse(source)
    if any(c.name == KERNELBENCH_CLASS for c in find_module_classes(tree)) or any(
        isinstance(n, ast.Name) and n.id == KERNELBENCH_CLASS for n in ast.walk(tree)
    ):
        raise SeedError(f"the program already uses the name {KERNELBENCH_CLASS}")
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_init_inputs"]
    if len(functions) != 1:
        raise SeedError("the program needs exactly one top-level get_init_inputs()")
    node = functions[0]
    lines = source.splitlines(keepends=True)
    start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
    replacement = f"def get_init_inputs():\n    return {_literal(flat)}\n"
    rewritten = "".join(lines[:start]) + replacement + "".join(lines[node.end_lineno :])
    return rename_class(rewritten, entry_point, KERNELBENCH_CLASS)


def seed_text(path: Path, entry_point: str, source: str) -> str:
    """The KernelBench task for the program at `path` (whose text is `source`)."""
    module = import_file(path, prefix="synth_seed")
    args, kwargs = init_inputs(module)
    flat = flat_init_inputs(getattr(module, entry_point), args, kwargs)
    return seed_source(source, entry_point, flat)


def seed_init_job(job: ValidationJob) -> dict[str, Any]:
    """Sandbox task (runs in the confined child): import the program, flatten its init inputs to a literal."""
    path = Path("program.py")  # the child's cwd is its private job directory
    path.write_text(job.source, encoding="utf-8")
    try:
        module = import_file(path, prefix="synth_seed")
        args, kwargs = init_inputs(module)
        return {"flat": _literal(flat_init_inputs(getattr(module, str(job.entry_point)), args, kwargs))}
    except SeedError as error:
        return {"seed_error": str(error)}
    except Exception as error:  # the program no longer imports or builds here
        return {"error": f"{type(error).__name__}: {error}"[:2000]}


def _flat_from(verdict: Verdict) -> list[Any]:
    """The child's answer, checked here: it is untrusted text, parsed as a literal and nothing else."""
    if not verdict.ok:
        raise SeedError(f"{verdict.category}: {verdict.message}"[:2000])
    answer = verdict.checks.get("result")
    if not isinstance(answer, dict):
        raise SeedError("the sandbox returned no answer")
    if isinstance(answer.get("seed_error"), str):
        raise SeedError(answer["seed_error"])
    if isinstance(answer.get("error"), str):
        raise SeedError(answer["error"])
    text = answer.get("flat")
    try:
        flat = ast.literal_eval(text) if isinstance(text, str) else None
    except (ValueError, SyntaxError):
        flat = None
    if not isinstance(flat, list):
        raise SeedError("the sandbox returned init inputs that are not a literal list")
    return flat


def sandboxed_flat_init_inputs(
    jobs: list[ValidationJob], allow_unsandboxed: bool = False
) -> Iterator[tuple[ValidationJob, list[Any] | Exception]]:
    """Each job's flat init inputs, computed in the sandbox (its code never runs in this process).

    The answer is the program's `[args, kwargs]` bound to its `__init__` and flattened; a program that cannot be
    expressed that way (or no longer imports) yields the exception instead.
    """
    if not jobs:
        return
    options = SandboxOptions(compile=False, device="cpu", allow_unsandboxed=allow_unsandboxed)
    with SandboxPool(min(2, len(jobs)), options) as pool:
        futures = [(job, pool.call("seed_init_inputs", job)) for job in jobs]
        for job, future in futures:
            try:
                yield job, _flat_from(future.result())
            except Exception as error:
                yield job, error


def export_seeds(output_dir: str | Path, out: str | Path, allow_unsandboxed: bool = False) -> SeedsExport:
    """Write `N_<EntryPoint>.py` task files (N from 1, manifest order) and index.json into `out`."""
    programs = load_programs(output_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = SeedsExport()
    jobs = [ValidationJob(id=p.id, source=p.source, entry_point=p.entry_point) for p in programs]
    for program, (_, flat) in zip(programs, sandboxed_flat_init_inputs(jobs, allow_unsandboxed), strict=True):
        try:
            if isinstance(flat, Exception):
                raise flat
            text = seed_source(program.source, program.entry_point, flat)
        except SeedError as error:
            result.skipped.append(
                {"id": program.id, "entry_point": program.entry_point, "reason": str(error)}
            )
            continue
        except Exception as error:  # the program no longer imports or builds here
            result.skipped.append(
                {
                    "id": program.id,
                    "entry_point": program.entry_point,
                    "reason": f"{type(error).__name__}: {error}",
                }
            )
            continue
        number = len(result.tasks) + 1
        name = f"{number}_{program.entry_point}.py"
        (out / name).write_text(text, encoding="utf-8")
        result.tasks.append(
            {
                "index": number,
                "file": name,
                "id": program.id,
                "entry_point": program.entry_point,
                "ops": program.ops,
                "dtype": declared_dtype(program.source),
            }
        )
    atomic_write_json(
        out / INDEX_FILE,
        {
            "format": "kernelbench",
            "source": str(Path(output_dir).resolve()),
            "class_name": KERNELBENCH_CLASS,
            "count": len(result.tasks),
            "tasks": result.tasks,
            "skipped": result.skipped,
        },
    )
    return result
