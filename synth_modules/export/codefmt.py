"""Formatting generated code with ruff, so every exported pair reads the same way.

Ruff runs isolated from any project configuration: a pair's formatting must not depend on where it was made.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache

# Unused imports (F401) are removed and imports sorted (I) before formatting; nothing else is rewritten.
_FIX_RULES = "F401,I"


class RuffMissingError(RuntimeError):
    """ruff is a dependency of the export extra; without it pairs would not be formatted."""


@lru_cache(maxsize=1)
def ruff_binary() -> str:
    """Path of the ruff executable (the `ruff` package's own binary first, then PATH)."""
    try:
        from ruff import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        if found:
            return found
    raise RuffMissingError("ruff is needed to format exported pairs: pip install 'synth-torch[export]'")


def _ruff(args: list[str], code: str) -> str:
    proc = subprocess.run(
        [ruff_binary(), *args, "--isolated", "--stdin-filename", "pair.py", "-"],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise ValueError(f"ruff {args[0]} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout


def format_python(code: str) -> str:
    """Drop unused imports, sort imports and ruff-format `code` (which must parse)."""
    fixed = _ruff(["check", "--select", _FIX_RULES, "--fix", "--exit-zero", "--quiet"], code)
    return _ruff(["format", "--quiet"], fixed)
