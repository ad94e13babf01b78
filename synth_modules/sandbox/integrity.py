"""Integrity snapshots: did untrusted code replace what it is judged with, or leave a thread running?

Wherever a program runs in the same interpreter as the code that judges it, a snapshot is taken before the
program exists and compared after it ran; this is the one mechanism for all of them:
- validation's forked child (child.py): `Snapshot.take()` just before the program is loaded, `problems()`
  before any verdict; anything found makes the verdict `unsafe_code`;
- the self-confining service (service.py: export-pairs' GPU workers, the kernel evaluator): a baseline after
  the handler's setup, `problems()` after every reply; anything found and the worker is replaced;
- the kernel evaluator's worker (kernel_search/evaluator/hacks.py): a snapshot before the candidate is loaded,
  `changed()` and `new_threads()` after every candidate call.

What is watched: every attribute of the `WATCHED_MODULES` that are imported when the snapshot is taken (a
replaced or deleted one counts; additions are lazy submodule imports), the whole namespace of the
`WATCHED_CLASSES` (an added `__eq__` or `__torch_function__` counts too), and the number of Python threads.
Static checks refuse such programs already; this is the layer that holds when they are bypassed or wrong.
Binding the judge's own references before any program exists is a different job (judges.py).
"""

from __future__ import annotations

import _thread
import importlib
import operator
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

WATCHED_MODULES = (
    "builtins",  # isinstance / len / float / max / sum, which every comparison calls
    "math",
    "os",
    "time",  # the clocks every measurement reads
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.nn.init",
    "torch.random",
    "torch.testing",
    "torch.cuda",
    "torch._dynamo",
    "torch._inductor.compile_fx",
    "torch.utils._pytree",
    "synth_modules.sandbox.compare",
    "synth_modules.sandbox.degenerate",
)
WATCHED_CLASSES = (
    ("torch", "Tensor"),
    ("torch._C", "TensorBase"),  # Tensor's methods mostly live here
    ("torch.nn", "Module"),
    ("torch.nn", "Parameter"),
    ("torch.cuda", "Event"),
)
LEFT_RUNNING = "left running"  # ends every problem about threads or processes a program left behind
REPLACED = "replaced what the sandbox judges with"
_PLAIN = (bool, int, float, str, type(None))
_SHOWN = 8


@dataclass(frozen=True)
class _Namespace:
    """One module or class as it was: its keys and values in order. Holding them keeps the originals alive,
    and comparing by identity (`is`, never `==`, which a replacement could answer) is a pass in C."""

    name: str
    namespace: ModuleType | type
    keys: tuple[str, ...]
    values: tuple[Any, ...]

    @classmethod
    def of(cls, name: str, namespace: ModuleType | type) -> _Namespace:
        members = vars(namespace)
        return cls(name, namespace, tuple(members), tuple(members.values()))

    def changes(self) -> list[str]:
        """Replaced or deleted members (and, for a class, added ones) as qualified names."""
        is_class = isinstance(self.namespace, type)
        if not is_class and sys.modules.get(self.name) is not self.namespace:
            return [f"{self.name} (replaced in sys.modules)"]
        now = vars(self.namespace)
        # Replacing a member keeps its place, deleting one shifts the rest, additions come last (for a module
        # they are lazy submodule imports): so "unchanged" is the same keys and values in the same places.
        same_size = len(now) == len(self.keys) if is_class else len(now) >= len(self.keys)
        if (
            same_size
            and all(map(operator.is_, self.keys, now))
            and all(map(operator.is_, self.values, now.values()))
        ):
            return []
        found = [
            f"{self.name}.{k}"
            for k, v in zip(self.keys, self.values, strict=True)
            if not _same(v, now.get(k, _MISSING))
        ]
        if is_class:
            known = set(self.keys)
            found += [f"{self.name}.{k} (added)" for k in now if k not in known]
        return found


_MISSING = object()


def _same(before: Any, now: Any) -> bool:
    """The same object, or for a plain setting the same value (as text, so NaN equals itself)."""
    if before is now:
        return True
    return type(before) is type(now) and isinstance(now, _PLAIN) and repr(before) == repr(now)


def _is_progress_monitor(thread: threading.Thread) -> bool:
    """tqdm's monitor thread: Inductor's progress bars start and stop it on their own between programs."""
    monitor = getattr(sys.modules.get("tqdm._monitor"), "TMonitor", None)
    return monitor is not None and type(thread) is monitor


def _python_threads() -> int:
    """Threads started from Python (threading or raw _thread), tqdm's monitor aside; CUDA's and OpenMP's own
    native threads are not counted."""
    listed = threading.enumerate()
    raw = max(0, _thread._count() - (len(listed) - 1))  # _count() omits the main thread
    return sum(not _is_progress_monitor(t) for t in listed) + raw


@dataclass(frozen=True)
class Snapshot:
    """The watched namespaces and the thread count at one moment."""

    namespaces: tuple[_Namespace, ...]
    threads: int

    @classmethod
    def take(cls, extra_modules: tuple[str, ...] = ()) -> Snapshot:
        """Watch `WATCHED_MODULES` plus `extra_modules`, those of them already imported."""
        namespaces = [
            _Namespace.of(name, sys.modules[name])
            for name in dict.fromkeys((*WATCHED_MODULES, *extra_modules))
            if name in sys.modules
        ]
        for module_name, class_name in WATCHED_CLASSES:
            owner = sys.modules.get(module_name)
            if owner is not None and isinstance(getattr(owner, class_name, None), type):
                namespaces.append(_Namespace.of(f"{module_name}.{class_name}", getattr(owner, class_name)))
        return cls(tuple(namespaces), _python_threads())

    def changed(self) -> list[str]:
        """Qualified names of what was replaced or deleted since the snapshot (or added to a class)."""
        return [name for namespace in self.namespaces for name in namespace.changes()]

    def new_threads(self) -> int:
        """Python threads running now that were not at the snapshot."""
        return max(0, _python_threads() - self.threads)

    def problems(self) -> list[str]:
        """What differs from now, one sentence per kind: replaced members, extra threads."""
        found = []
        changed = self.changed()
        if changed:
            more = f" and {len(changed) - _SHOWN} more" if len(changed) > _SHOWN else ""
            found.append(f"{REPLACED}: {', '.join(changed[:_SHOWN])}{more}")
        threads = self.new_threads()
        if threads:
            found.append(f"{threads} thread(s) {LEFT_RUNNING}")
        return found


def is_leftover(problem: str) -> bool:
    """Whether `problem` (from `problems()` or the service's reply) is about threads or processes left behind."""
    return problem.endswith(LEFT_RUNNING)


def settle_torch() -> None:
    """Apply torch's own first-use patch now, so a later snapshot does not take it for a program's: Dynamo
    wraps `nn.Module.__init__` / `__setstate__` (and marks the class) on its first compile."""
    from torch._dynamo import mutation_guard

    mutation_guard.install_generation_tagging_init()


def import_watched() -> None:
    """Import every watched namespace up front (a worker that imports torch), so a snapshot covers them, and
    settle torch. A validation worker does not: on a GPU it must not import what may query CUDA before a fork."""
    for name in WATCHED_MODULES:
        importlib.import_module(name)
    settle_torch()
