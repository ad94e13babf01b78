"""Executing a program's text as a module: the one place untrusted code is turned into live objects.

Call it only inside a confined process (the validation child, the sandbox service's handlers: export-pairs,
export-seeds, the kernel evaluator), never in a parent that holds secrets or the run's ledgers.
"""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path

_module_counter = itertools.count()


def execute_as_module(source: str, filename: str, name: str, register: bool = False) -> types.ModuleType:
    """Run program text as a fresh module named `name` (`filename` is what tracebacks and inspect show).

    Not registered in sys.modules unless asked: program names repeat across runs, and a candidate must not
    find the task it is judged against by importing it. Registration is for code that looks its own module up
    (dataclasses with string annotations, pickling by reference).
    """
    module = types.ModuleType(name)
    module.__file__ = filename
    if register:
        sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def import_file(path: str | Path, prefix: str = "synth_program", register: bool = False) -> types.ModuleType:
    """Execute a Python file as a module under a unique name (`prefix_<n>_<stem>`)."""
    path = Path(path)
    name = f"{prefix}_{next(_module_counter)}_{path.stem}"
    return execute_as_module(path.read_text(encoding="utf-8"), str(path), name, register)
