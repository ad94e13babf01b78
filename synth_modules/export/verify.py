"""Numerical verification of a pair: the New (Triton) module against the original PyTorch module.

Both modules get the same weights (New loads the original's state_dict) and several fresh random inputs; every
output must have the same structure, shape and dtype, and agree elementwise within |a - b| <= atol + rtol * |b|
(floating point) or exactly (integers, bools). The default tolerances suit float32 with TF32 disabled: Inductor
fuses and reorders reductions, so bit equality is not expected, but 1e-3 catches every real indexing bug.

A bfloat16/float16 program is held to a float32 reference instead of its own eager run (which rounds after every
op): the New module's outputs must have the program's dtype and agree with a float32 copy of the original under
the sandbox's per-dtype rule (synth_modules/sandbox/compare.py), the same rule validation uses.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import nn

from synth_modules.export.errors import ExportError
from synth_modules.export.programs import init_inputs
from synth_modules.sandbox import compare as sandbox_compare
from synth_modules.types import Category

LOW_PRECISION = (torch.bfloat16, torch.float16)

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-3
DEFAULT_SEEDS = (1, 2, 3)  # capture uses seed 0: verification inputs are always fresh


@dataclass
class Comparison:
    ok: bool
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    message: str = ""

    def merge(self, other: Comparison) -> Comparison:
        return Comparison(
            ok=self.ok and other.ok,
            max_abs_error=max(self.max_abs_error, other.max_abs_error),
            max_rel_error=max(self.max_rel_error, other.max_rel_error),
            message=self.message or other.message,
        )


def flatten_outputs(value: Any) -> tuple[str, list[torch.Tensor]]:
    """("tensor" | "tuple" | "list", tensors) for the output structures a pair can reproduce."""
    if isinstance(value, torch.Tensor):
        return "tensor", [value]
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return ("tuple" if isinstance(value, tuple) else "list"), list(value)
    raise ExportError(Category.UNSUPPORTED, f"forward returns {type(value).__name__}, not tensors")


def compare_tensors(expected: torch.Tensor, actual: torch.Tensor, rtol: float, atol: float) -> Comparison:
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return Comparison(
            ok=False,
            message=f"expected {tuple(expected.shape)} {expected.dtype}, got {tuple(actual.shape)} {actual.dtype}",
        )
    expected = expected.detach().cpu()
    actual = actual.detach().cpu()
    if not expected.is_floating_point() and not expected.is_complex():
        equal = bool(torch.equal(expected, actual))
        return Comparison(ok=equal, message="" if equal else "integer outputs differ")
    expected64, actual64 = expected.double(), actual.double()
    both_nan = expected64.isnan() & actual64.isnan()
    diff = (expected64 - actual64).abs().masked_fill(both_nan, 0.0)
    diff = diff.nan_to_num(nan=float("inf"))
    if diff.numel() == 0:
        return Comparison(ok=True)
    bad = diff > atol + rtol * expected64.abs().nan_to_num(nan=0.0)
    rel = diff / expected64.abs().clamp_min(atol)
    max_abs, max_rel = float(diff.max()), float(rel.max())
    if bool(bad.any()):
        return Comparison(
            ok=False,
            max_abs_error=max_abs,
            max_rel_error=max_rel,
            message=f"{int(bad.sum())}/{bad.numel()} elements off (max abs {max_abs:.3g}, rtol {rtol}, atol {atol})",
        )
    return Comparison(ok=True, max_abs_error=max_abs, max_rel_error=max_rel)


def compare_outputs(expected: Any, actual: Any, rtol: float, atol: float) -> Comparison:
    kind_e, tensors_e = flatten_outputs(expected)
    try:
        kind_a, tensors_a = flatten_outputs(actual)
    except ExportError as error:
        return Comparison(ok=False, message=error.message)
    if kind_e != kind_a or len(tensors_e) != len(tensors_a):
        return Comparison(
            ok=False, message=f"expected {kind_e} of {len(tensors_e)}, got {kind_a} of {len(tensors_a)}"
        )
    result = Comparison(ok=True)
    for index, (e, a) in enumerate(zip(tensors_e, tensors_a, strict=True)):
        one = compare_tensors(e, a, rtol, atol)
        if not one.ok and one.message:
            one.message = f"output {index}: {one.message}"
        result = result.merge(one)
    return result


def is_low_precision(output: Any) -> bool:
    _, tensors = flatten_outputs(output)
    return any(t.dtype in LOW_PRECISION for t in tensors)


def float32_reference(original: nn.Module, inputs: list[Any]) -> Any:
    """The original module run in float32 on float32 copies of the inputs."""
    wide = copy.deepcopy(original).float()
    return wide(*[v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in inputs])


def compare_low_precision(expected: Any, actual: Any, reference: Any) -> Comparison:
    """`actual` must match `expected`'s structure, shapes and dtypes, and `reference` (float32) in value."""
    kind_e, tensors_e = flatten_outputs(expected)
    try:
        kind_a, tensors_a = flatten_outputs(actual)
    except ExportError as error:
        return Comparison(ok=False, message=error.message)
    if kind_e != kind_a or len(tensors_e) != len(tensors_a):
        return Comparison(
            ok=False, message=f"expected {kind_e} of {len(tensors_e)}, got {kind_a} of {len(tensors_a)}"
        )
    for index, (e, a) in enumerate(zip(tensors_e, tensors_a, strict=True)):
        if e.shape != a.shape or e.dtype != a.dtype:
            return Comparison(
                ok=False,
                message=f"output {index}: expected {tuple(e.shape)} {e.dtype}, got {tuple(a.shape)} {a.dtype}",
            )
    _, tensors_r = flatten_outputs(reference)
    wide = [r.to(e.dtype) if r.is_floating_point() else r for r, e in zip(tensors_r, tensors_e, strict=True)]
    result = sandbox_compare.compare(wide, tensors_a)
    return Comparison(
        ok=result.ok,
        max_abs_error=result.max_abs_err,
        max_rel_error=result.rel_err,
        message="" if result.ok else f"vs float32 reference: {result.message}",
    )


def fresh_inputs(program: ModuleType, seed: int, device: str | torch.device) -> list[Any]:
    torch.manual_seed(seed)
    return [v.to(device) if isinstance(v, torch.Tensor) else v for v in program.get_inputs()]


def _clone(values: list[Any]) -> list[Any]:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def build_original(
    program: ModuleType, entry_point: str, device: str | torch.device, seed: int = 0
) -> nn.Module:
    args, kwargs = init_inputs(program)
    torch.manual_seed(seed)
    return getattr(program, entry_point)(*args, **kwargs).to(device).eval()


def build_new(
    program: ModuleType, new_cls: type[nn.Module], original: nn.Module, device: str | torch.device
) -> nn.Module:
    """The New module with the original's exact weights (strict state_dict load: same keys, same shapes)."""
    args, kwargs = init_inputs(program)
    new = new_cls(*args, **kwargs).to(device)
    new.load_state_dict(original.state_dict(), strict=True)
    return new.eval()


def verify_pair(
    program: ModuleType,
    entry_point: str,
    new_cls: type[nn.Module],
    device: str | torch.device,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> Comparison:
    """Compare original and New on `seeds` fresh inputs; the first disagreement stops the check."""
    original = build_original(program, entry_point, device)
    new = build_new(program, new_cls, original, device)
    result = Comparison(ok=True)
    with torch.no_grad():
        for seed in seeds:
            inputs = fresh_inputs(program, seed, device)
            expected = original(*_clone(inputs))
            actual = new(*_clone(inputs))
            if is_low_precision(expected):
                one = compare_low_precision(expected, actual, float32_reference(original, _clone(inputs)))
            else:
                one = compare_outputs(expected, actual, rtol, atol)
            if not one.ok:
                one.message = f"inputs seed {seed}: {one.message}"
            result = result.merge(one)
            if not result.ok:
                break
    return result


class _CpuAllocator(ast.NodeTransformer):
    def visit_Attribute(self, node: ast.Attribute) -> ast.Attribute:
        self.generic_visit(node)
        if node.attr == "_empty_strided_cuda":
            node.attr = "_empty_strided_cpu"
        return node


def retarget_to_cpu(triton_code: str) -> str:
    """The same program allocating its buffers on CPU, for Triton's interpreter (TRITON_INTERPRET=1) in CI."""
    tree = _CpuAllocator().visit(ast.parse(triton_code))
    return ast.unparse(ast.fix_missing_locations(tree))
