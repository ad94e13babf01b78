"""What the worker's stages share: the `Stop` outcome, module loading without registration, error text."""

from __future__ import annotations

import importlib.util
from types import ModuleType

_CUDA_FAULTS = ("CUDA error", "illegal memory access", "device-side assert", "unspecified launch failure")


class Stop(Exception):
    def __init__(self, category: str, message: str, hack: str | None = None):
        super().__init__(message)
        self.category, self.message, self.hack = category, message, hack


def load_module(path: str, name: str) -> ModuleType:
    """Import a file without registering it in sys.modules (the candidate cannot import the task by name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1500]


def is_cuda_fault(error: BaseException) -> bool:
    """A CUDA fault poisons the context: the run is a crash (and the worker process ends with it)."""
    return any(marker in str(error) for marker in _CUDA_FAULTS)
