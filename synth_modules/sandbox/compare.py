"""Output flattening and dtype-aware comparison of two runs (eager vs eager, eager vs compiled).

Tolerances follow the dtype's precision: float32 gets rtol=1e-3 with an absolute tolerance scaled to the output's
magnitude (Inductor reorders reductions, so elements that cancel to ~0 carry errors relative to the terms, not
to themselves); half precisions are looser; integers and booleans must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# dtype -> (rtol, atol as a fraction of max |reference|)
_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-6, 1e-6),
    torch.float32: (1e-3, 1e-3),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
}
_MIN_ATOL = 1e-5


class OutputError(ValueError):
    """A forward output that is not a tensor or a (nested) tuple/list of tensors."""


def flatten_outputs(value: Any) -> list[torch.Tensor]:
    """Tensor leaves of a forward's output, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        leaves: list[torch.Tensor] = []
        for item in value:
            leaves.extend(flatten_outputs(item))
        return leaves
    raise OutputError(f"forward returned {type(value).__name__}, expected a tensor or a tuple of tensors")


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, relative atol) for a floating dtype; (0, 0) means exact."""
    if dtype.is_complex:
        return _TOLERANCES[torch.float32 if dtype == torch.complex64 else torch.float64]
    return _TOLERANCES.get(dtype, (0.0, 0.0))


@dataclass
class Comparison:
    ok: bool
    max_abs_err: float = 0.0
    rel_err: float = 0.0
    shape_mismatch: bool = False
    message: str = ""


def _as_real(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu()
    if t.is_complex():
        t = torch.view_as_real(t)
    return t


def compare(reference: list[torch.Tensor], candidate: list[torch.Tensor]) -> Comparison:
    """Compare `candidate` against `reference` leaf by leaf with dtype-aware tolerances."""
    if len(reference) != len(candidate):
        return Comparison(
            False, shape_mismatch=True, message=f"{len(candidate)} outputs, expected {len(reference)}"
        )
    worst_abs, worst_rel = 0.0, 0.0
    for i, (ref, got) in enumerate(zip(reference, candidate, strict=True)):
        if tuple(ref.shape) != tuple(got.shape):
            return Comparison(
                False,
                shape_mismatch=True,
                message=f"output {i}: shape {list(got.shape)} != {list(ref.shape)}",
            )
        if ref.dtype != got.dtype:
            return Comparison(False, message=f"output {i}: dtype {got.dtype} != {ref.dtype}")
        ref_r, got_r = _as_real(ref), _as_real(got)
        rtol, atol_frac = tolerance(ref.dtype)
        if rtol == 0.0:
            if not torch.equal(ref_r, got_r):
                bad = int((ref_r != got_r).sum())
                return Comparison(False, message=f"output {i}: {bad} of {ref_r.numel()} exact values differ")
            continue
        ref64, got64 = ref_r.double(), got_r.double()
        scale = float(ref64.abs().max()) if ref64.numel() else 0.0
        atol = max(atol_frac * scale, _MIN_ATOL)
        both_nan = torch.isnan(ref64) & torch.isnan(got64)
        diff = (ref64 - got64).abs().masked_fill(both_nan, 0.0)
        max_abs = float(diff.max()) if diff.numel() else 0.0
        if diff.isnan().any():
            max_abs = float("inf")
        worst_abs = max(worst_abs, max_abs)
        worst_rel = max(worst_rel, max_abs / scale if scale > 0 else max_abs)
        allowed = atol + rtol * ref64.abs()
        bad = ~(diff <= allowed)
        if bool(bad.any()):
            return Comparison(
                False,
                worst_abs,
                worst_rel,
                message=(
                    f"output {i}: {int(bad.sum())} of {diff.numel()} values differ "
                    f"(max abs err {max_abs:.3g}, output scale {scale:.3g}, rtol {rtol:g}, atol {atol:.3g})"
                ),
            )
    return Comparison(True, worst_abs, worst_rel)


def identical(first: list[torch.Tensor], second: list[torch.Tensor], tol: float = 1e-6) -> bool:
    """Run-to-run equality: bit-for-bit, or within `tol` relative to the output scale (NaN equals NaN)."""
    if len(first) != len(second):
        return False
    for a, b in zip(first, second, strict=True):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        a_r, b_r = _as_real(a), _as_real(b)
        if torch.equal(a_r, b_r):
            continue
        if not (a_r.is_floating_point()):
            return False
        scale = max(float(a_r.double().abs().nan_to_num(0.0, 0.0, 0.0).max()) if a_r.numel() else 0.0, 1.0)
        if not torch.allclose(a_r.double(), b_r.double(), rtol=0.0, atol=tol * scale, equal_nan=True):
            return False
    return True
