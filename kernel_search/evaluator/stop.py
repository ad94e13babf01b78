"""What the worker's stages share: the `Stop` outcome and error text."""

from __future__ import annotations

_CUDA_FAULTS = ("CUDA error", "illegal memory access", "device-side assert", "unspecified launch failure")


class Stop(Exception):
    def __init__(self, category: str, message: str, hack: str | None = None):
        super().__init__(message)
        self.category, self.message, self.hack = category, message, hack


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1500]


def is_cuda_fault(error: BaseException) -> bool:
    """A CUDA fault poisons the context: the run is a crash (and the worker process ends with it)."""
    return any(marker in str(error) for marker in _CUDA_FAULTS)
