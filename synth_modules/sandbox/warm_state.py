"""Is a worker process still the one we started? Checked after every program it runs (service.py).

A GPU worker serves several programs in one interpreter (CUDA cannot be forked), so a program that patches a
function the next program is judged with, or leaves a thread or a process behind, must not get a second turn
in that process: `Snapshot.problems()` names what changed and the worker is replaced. The kernel evaluator
takes the same snapshot inside its worker before a candidate is loaded and checks it after every candidate
call (`changed()`: its clocks and comparisons replaced; `new_threads()`: threads left running).
"""

from __future__ import annotations

import _thread
import importlib
import sys
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# Namespaces whose functions the sandbox and the exporters judge with (checked when already imported).
WATCHED = (
    "builtins",
    "os",
    "time",  # the clocks every measurement reads
    "torch",
    "torch.nn.functional",
    "torch.testing",
    "torch.cuda",
    "torch._dynamo",
    "torch._inductor.compile_fx",
    "torch.utils._pytree",
)
WATCHED_CLASSES = (("torch", "Tensor"), ("torch.nn", "Module"), ("torch.cuda", "Event"))
LEFT_RUNNING = "left running"  # ends every problem about threads or processes a program left behind
_PLAIN = (bool, int, float, str, type(None))


def _identity(value: Any) -> Any:
    """What must not change: the object for callables and classes, the value for plain settings (as text,
    so NaN equals itself)."""
    return repr(value) if isinstance(value, _PLAIN) else id(value)


def _members(namespace: ModuleType | type) -> dict[str, Any]:
    items = vars(namespace).items() if isinstance(namespace, type) else namespace.__dict__.items()
    return {name: _identity(value) for name, value in list(items)}


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


@dataclass
class Snapshot:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: int = 0

    @classmethod
    def take(cls, extra_modules: tuple[str, ...] = ()) -> Snapshot:
        snapshot = cls(threads=_python_threads())
        for name in (*WATCHED, *extra_modules):
            module = sys.modules.get(name)
            if module is not None:
                snapshot.members[name] = _members(module)
        for module_name, class_name in WATCHED_CLASSES:
            module = sys.modules.get(module_name)
            if module is not None and isinstance(getattr(module, class_name, None), type):
                snapshot.members[f"{module_name}.{class_name}"] = _members(getattr(module, class_name))
        return snapshot

    def changed(self) -> list[str]:
        """Namespaces whose members were replaced or deleted since the snapshot (new ones are lazy imports)."""
        found = []
        for name, before in self.members.items():
            module_name, _, class_name = name.rpartition(".")
            namespace: Any = sys.modules.get(name)
            if namespace is None and module_name in sys.modules:
                namespace = getattr(sys.modules[module_name], class_name, None)
            if namespace is None:
                found.append(f"{name} is gone")
                continue
            now = _members(namespace)
            changed = sorted(k for k, v in before.items() if now.get(k, _MISSING) != v)
            if changed:
                found.append(f"{name}: {', '.join(changed[:8])} changed")
        return found

    def new_threads(self) -> int:
        """Python threads running now that were not at the snapshot."""
        return max(0, _python_threads() - self.threads)

    def problems(self) -> list[str]:
        """What differs from now: replaced or deleted members, extra threads."""
        found = self.changed()
        threads = self.new_threads()
        if threads:
            found.append(f"{threads} thread(s) {LEFT_RUNNING}")
        return found


def is_leftover(problem: str) -> bool:
    """Whether `problem` (from `problems()` or the service's reply) is about threads or processes left behind."""
    return problem.endswith(LEFT_RUNNING)


_MISSING = object()


def import_watched() -> None:
    """Import the watched torch namespaces up front, so a snapshot covers them (the worker imports torch)."""
    for name in WATCHED:
        if name.startswith("torch"):
            importlib.import_module(name)
