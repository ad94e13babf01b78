"""Work other than validation that runs on untrusted code inside the same forked, confined child.

`SandboxPool.call(task, job)` sends a job with `extra["task"]` set to one of these names; the child imports the
function (by name, so the sandbox does not depend on its callers), calls it with the job and sends back its
JSON answer as `verdict.checks["result"]`. Only names in TASKS run: the parent cannot be made to call anything
else, and the child sends plain JSON, never pickles.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from synth_modules.sandbox.api import ValidationJob

# name -> "module:function"; each function takes the ValidationJob and returns a JSON-serialisable dict.
TASKS = {
    "deduce": "github_index.deduce:deduce_job",
    "seed_init_inputs": "synth_modules.export.seeds:seed_init_job",
}


def resolve(name: str) -> Callable[[ValidationJob], dict[str, Any]]:
    if name not in TASKS:
        raise ValueError(f"unknown sandbox task {name!r} (known: {', '.join(sorted(TASKS))})")
    module_name, function_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)
