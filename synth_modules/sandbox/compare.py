"""The one comparison rule: a candidate's outputs against a reference's, for every judge in the project.

The validation sandbox (compiled vs eager), pair verification (Triton module vs PyTorch module) and the kernel
evaluator (candidate vs task) all call `compare(reference, candidate)`. Per output tensor, with
`scale = max |finite reference|`, every element must satisfy

    |candidate - reference| <= scale_atol * scale + rtol * |reference|

with `(rtol, scale_atol)` taken from TOLERANCES by the reference's dtype. The absolute part follows the output's
magnitude, not a fixed number: Inductor reorders reductions, so an element that cancels to ~0 carries an error
relative to the terms that made it, and a fixed atol would also let a kernel that returns zeros pass wherever the
outputs are small. Complex outputs are compared as real views (their component dtype's tolerance); integers and
booleans must match exactly; NaN must appear exactly where the reference has NaN, and an infinity must be the
reference's own. Shapes, dtypes and the number of outputs must match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Tolerance:
    """Per-element bound: `scale_atol` is a fraction of the output's scale, `rtol` of |reference element|."""

    rtol: float
    scale_atol: float

    def to_dict(self) -> dict[str, float]:
        return {"rtol": self.rtol, "scale_atol": self.scale_atol}


EXACT = Tolerance(0.0, 0.0)
# The per-dtype table (the only one): float32 is tight (Inductor vs eager on CPU differ by ~1e-6 of the scale,
# the worst of 200 composer programs by 5e-5); half precisions carry ~3 significant digits, bfloat16 fewer.
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(1e-7, 1e-7),
    torch.float32: Tolerance(1e-4, 1e-4),
    torch.float16: Tolerance(1e-2, 1e-2),
    torch.bfloat16: Tolerance(2e-2, 2e-2),
}
_COMPLEX_PARTS = {
    torch.complex64: torch.float32,
    torch.complex128: torch.float64,
    torch.complex32: torch.float16,
}


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


def tolerance(dtype: torch.dtype) -> Tolerance:
    """The table's tolerance for `dtype` (complex: its component dtype); EXACT for integers and booleans."""
    dtype = _COMPLEX_PARTS.get(dtype, dtype)
    if not dtype.is_floating_point:
        return EXACT
    if dtype not in TOLERANCES:
        raise ValueError(f"no comparison tolerance for {dtype}: add it to TOLERANCES in {__name__}")
    return TOLERANCES[dtype]


@dataclass
class Comparison:
    """The verdict on one candidate; `reason` says why not.

    `max_abs_error` is over all outputs; `max_rel_error`, `tolerance`, `atol` and `scale` are those of the
    output with the largest relative error (on failure: of the failing output).
    """

    ok: bool
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0  # max abs error / output scale
    reason: str = ""
    tolerance: Tolerance | None = None
    atol: float = 0.0  # the absolute bound used: scale_atol * scale
    scale: float = 0.0
    shape_mismatch: bool = False

    # The names the sandbox's call sites used before the rule had one result type (kept so they keep working).
    @property
    def max_abs_err(self) -> float:
        return self.max_abs_error

    @property
    def rel_err(self) -> float:
        return self.max_rel_error

    @property
    def message(self) -> str:
        return self.reason

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "tolerance"}
        data["tolerance"] = self.tolerance.to_dict() if self.tolerance else None
        return data


def _as_real(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu()
    return torch.view_as_real(t) if t.is_complex() else t


def _compare_one(ref: torch.Tensor, got: torch.Tensor, tol: Tolerance) -> Comparison:
    ref_r, got_r = _as_real(ref), _as_real(got)
    if tol == EXACT or not ref_r.is_floating_point():
        if torch.equal(ref_r, got_r):
            return Comparison(True, tolerance=EXACT)
        bad = int((ref_r != got_r).sum())
        return Comparison(False, reason=f"{bad} of {ref_r.numel()} exact values differ", tolerance=EXACT)
    if ref_r.numel() == 0:
        return Comparison(True, tolerance=tol)
    ref64, got64 = ref_r.double(), got_r.double()
    ref_nan, got_nan = ref64.isnan(), got64.isnan()
    if not torch.equal(ref_nan, got_nan):
        extra, missing = int((got_nan & ~ref_nan).sum()), int((ref_nan & ~got_nan).sum())
        return Comparison(
            False,
            float("inf"),
            float("inf"),
            f"NaN pattern differs ({extra} NaN where the reference has none, {missing} NaN missing)",
            tolerance=tol,
        )
    finite = ref64.isfinite()
    scale = float(ref64.abs().masked_fill(~finite, 0.0).max())
    atol = max(tol.scale_atol * scale, torch.finfo(ref_r.dtype).tiny)
    same = (ref64 == got64) | ref_nan  # equal values, NaN for NaN, the same infinity
    diff = (ref64 - got64).abs().masked_fill(same, 0.0).nan_to_num(nan=float("inf"))
    allowed = atol + tol.rtol * ref64.abs().masked_fill(~finite, 0.0)
    max_abs = float(diff.max())
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    result = Comparison(True, max_abs, max_rel, tolerance=tol, atol=atol, scale=scale)
    bad = diff > allowed
    if bool(bad.any()):
        result.ok = False
        result.reason = (
            f"{int(bad.sum())} of {diff.numel()} values differ (max abs err {max_abs:.3g} at output scale "
            f"{scale:.3g}; allowed {tol.scale_atol:g} x scale + {tol.rtol:g} x |ref|)"
        )
    return result


def compare(
    reference: torch.Tensor | Sequence[torch.Tensor],
    candidate: torch.Tensor | Sequence[torch.Tensor],
    override: Tolerance | None = None,
) -> Comparison:
    """Judge `candidate` against `reference` output by output; the first failing output decides.

    `override` replaces the table's tolerance for floating outputs (integers stay exact); None uses TOLERANCES.
    """
    refs = [reference] if isinstance(reference, torch.Tensor) else list(reference)
    cands = [candidate] if isinstance(candidate, torch.Tensor) else list(candidate)
    if len(refs) != len(cands):
        return Comparison(False, reason=f"{len(cands)} outputs, expected {len(refs)}", shape_mismatch=True)
    worst = Comparison(True)
    max_abs = 0.0
    for index, (ref, got) in enumerate(zip(refs, cands, strict=True)):
        if not isinstance(got, torch.Tensor):
            return Comparison(False, reason=f"output {index}: {type(got).__name__}, expected a tensor")
        if tuple(ref.shape) != tuple(got.shape):
            return Comparison(
                False,
                reason=f"output {index}: shape {list(got.shape)} != {list(ref.shape)}",
                shape_mismatch=True,
            )
        if ref.dtype != got.dtype:
            return Comparison(False, reason=f"output {index}: dtype {got.dtype} != {ref.dtype}")
        tol = tolerance(ref.dtype)
        if override is not None and tol != EXACT:
            tol = override
        one = _compare_one(ref, got, tol)
        if not one.ok:
            one.reason = f"output {index}: {one.reason}"
            return one
        max_abs = max(max_abs, one.max_abs_error)
        if worst.tolerance is None or one.max_rel_error >= worst.max_rel_error:
            worst = one
    worst.max_abs_error = max_abs
    return worst


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
