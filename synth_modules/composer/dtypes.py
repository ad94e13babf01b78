"""Which ops the composer may use per program dtype, from a measurement of PyTorch's CPU kernels.

Validation runs on CPU, and some CPU kernels have no bfloat16/float16 version (e.g. a slow conv path). The table
`cpu_dtype_support.json` is written by `benchmarks/cpu_dtype_support.py`, which composes programs around every
sampleable op and runs them eagerly and compiled on CPU in each half dtype; an op listed there for a dtype is not
placed by the composer in programs of that dtype.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from synth_modules.sampling.dtypes import PROGRAM_DTYPES

TABLE_FILE = Path(__file__).with_name("cpu_dtype_support.json")


@cache
def _table() -> dict[str, frozenset[str]]:
    if not TABLE_FILE.exists():
        return {}
    data = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    return {dtype: frozenset(ops) for dtype, ops in data.get("unsupported", {}).items()}


def cpu_unsupported(dtype: str) -> frozenset[str]:
    """Canonical op names the composer leaves out of `dtype` programs."""
    if dtype not in PROGRAM_DTYPES:
        raise ValueError(f"unknown program dtype {dtype!r}; choose one of {', '.join(PROGRAM_DTYPES)}")
    return _table().get(dtype, frozenset())
