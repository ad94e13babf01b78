"""The validation sandbox: static checks in the parent, then isolated warm workers (see pool.py, worker.py)."""

from synth_modules.sandbox.api import SandboxOptions, ValidationJob
from synth_modules.sandbox.pool import SandboxPool

__all__ = ["SandboxOptions", "SandboxPool", "ValidationJob"]
