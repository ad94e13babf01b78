"""The MAP-Elites grid of the evolution loop: one elite per cell of (speedup, code size, kernel count).

Features are read from the attempt itself (its measurement and its source), so the grid keeps fast programs
and also different ones: a small single-kernel program and a large multi-kernel one never compete for a cell.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from kernel_search.loops.trajectory import Attempt

SPEEDUP_EDGES = (0.5, 0.9, 1.1, 1.5, 2.0, 3.0)  # bins: below 0.5x, 0.5-0.9x, ..., 3x and above
SIZE_EDGES = (40, 80, 160, 320)  # non-blank source lines
KERNEL_EDGES = (1, 2, 4)  # kernels defined: 0, 1, 2-3, 4+

_KERNEL = re.compile(r"@triton\.jit|@triton\.autotune|load_inline\(|__global__")

Cell = tuple[int, int, int]


def _bin(value: float, edges: tuple[float, ...]) -> int:
    return sum(value >= edge for edge in edges)


def kernel_count(source: str) -> int:
    """Custom kernels the source defines (Triton jit functions, inline CUDA/C++ kernels)."""
    return len(_KERNEL.findall(source))


def code_size(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip())


def features(attempt: Attempt) -> Cell:
    speedup = attempt.speedup_vs_eager or 0.0
    return (
        _bin(speedup if math.isfinite(speedup) else 0.0, SPEEDUP_EDGES),
        _bin(code_size(attempt.code), SIZE_EDGES),
        _bin(kernel_count(attempt.code), KERNEL_EDGES),
    )


@dataclass
class EliteGrid:
    cells: dict[Cell, Attempt] = field(default_factory=dict)

    def offer(self, attempt: Attempt) -> bool:
        """Place an accepted attempt if its cell is empty or it beats the occupant; True when placed."""
        if not attempt.accepted:
            return False
        cell = features(attempt)
        occupant = self.cells.get(cell)
        if occupant is not None and occupant.score >= attempt.score:
            return False
        self.cells[cell] = attempt
        return True

    def elites(self) -> list[Attempt]:
        return sorted(self.cells.values(), key=lambda a: a.score, reverse=True)

    def best(self) -> Attempt | None:
        elites = self.elites()
        return elites[0] if elites else None

    def describe(self) -> dict[str, object]:
        return {
            "cells": {"/".join(map(str, cell)): a.index for cell, a in sorted(self.cells.items())},
            "occupied": len(self.cells),
        }
