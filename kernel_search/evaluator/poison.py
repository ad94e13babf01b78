"""The poison patterns uninitialised memory is filled with, so a candidate returning it is caught.

Torch-free on purpose: the parent (isolation.py) sets the CPU worker's allocator from it before torch loads.
"""

from __future__ import annotations

# 16-bit pattern filled into free memory before the candidate runs: a NaN read as fp16, bf16 or fp32 (pairs),
# with a payload no arithmetic produces, so "returned stale memory" is told apart from "computed NaN".
POISON_16 = 0x7FA5
# CPU: the worker runs with glibc's MALLOC_PERTURB_ (isolation.py), so every fresh malloc, whatever the heap's
# history, is filled with the complement of this byte -- the allocator-level poison CPU needs, since glibc's
# reuse of freed blocks cannot be steered from Python the way CUDA's caching allocator can.
HEAP_PERTURB_BYTE = 0x80
HEAP_POISON_16 = (~HEAP_PERTURB_BYTE & 0xFF) * 0x0101  # 0x7F7F: NaN as fp16, 3.4e38 as bf16 / fp32
