"""Numerical verification of a pair: the New (Triton) module against the original PyTorch module.

Both modules get the same randomized weights (sandbox/weights.py: every floating parameter and buffer redrawn
from a seeded generator, BatchNorm statistics included, then New loads the original's state_dict strictly) and
several fresh random inputs; every output must have the same structure, shape and dtype and pass the project's
one comparison rule (sandbox/compare.py: tolerance by dtype, scaled to the reference's magnitude). Default
weights are not enough: with norm weights 1 and biases 0 a kernel that drops a bias or swaps two such tensors
computes the right numbers.

A bfloat16/float16 program is held to a float32 reference instead of its own eager run (which rounds after every
op): the New module's outputs must have the program's dtype and agree with a float32 copy of the original, under
the same rule at the half dtype's tolerance (docs/sizes_and_dtypes.md).
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
from synth_modules.sandbox.compare import TOLERANCES, Comparison, Tolerance, compare
from synth_modules.sandbox.weights import randomize_weights
from synth_modules.types import Category

LOW_PRECISION = (torch.bfloat16, torch.float16)
DEFAULT_SEEDS = (1, 2, 3)  # capture uses seed 0: verification inputs are always fresh
DEFAULT_WEIGHT_SEED = 7


@dataclass
class CheckSettings:
    """How a pair is verified (recorded in meta.json and each pair's capture_info; resume must match)."""

    seeds: tuple[int, ...] = DEFAULT_SEEDS
    weight_seed: int = DEFAULT_WEIGHT_SEED
    tolerance: Tolerance | None = None  # None: the per-dtype table of sandbox/compare.py

    def to_dict(self) -> dict[str, Any]:
        table = {str(dtype).removeprefix("torch."): tol.to_dict() for dtype, tol in TOLERANCES.items()}
        return {
            "rule": "scaled",
            "seeds": list(self.seeds),
            "weight_seed": self.weight_seed,
            "tolerances": {"all": self.tolerance.to_dict()} if self.tolerance else table,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckSettings:
        """The inverse of to_dict (how the settings reach a worker process)."""
        override = data.get("tolerances", {}).get("all")
        return cls(
            seeds=tuple(int(s) for s in data.get("seeds", DEFAULT_SEEDS)),
            weight_seed=int(data.get("weight_seed", DEFAULT_WEIGHT_SEED)),
            tolerance=Tolerance(float(override["rtol"]), float(override["scale_atol"])) if override else None,
        )


def flatten_outputs(value: Any) -> tuple[str, list[torch.Tensor]]:
    """("tensor" | "tuple" | "list", tensors) for the output structures a pair can reproduce."""
    if isinstance(value, torch.Tensor):
        return "tensor", [value]
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return ("tuple" if isinstance(value, tuple) else "list"), list(value)
    raise ExportError(Category.UNSUPPORTED, f"forward returns {type(value).__name__}, not tensors")


def compare_outputs(expected: Any, actual: Any, override: Tolerance | None = None) -> Comparison:
    """The same output structure (tensor / tuple / list of the same length), then the comparison rule."""
    kind_e, tensors_e = flatten_outputs(expected)
    try:
        kind_a, tensors_a = flatten_outputs(actual)
    except ExportError as error:
        return Comparison(ok=False, reason=error.message)
    if kind_e != kind_a or len(tensors_e) != len(tensors_a):
        return Comparison(
            ok=False, reason=f"expected {kind_e} of {len(tensors_e)}, got {kind_a} of {len(tensors_a)}"
        )
    return compare(tensors_e, tensors_a, override)


def is_low_precision(output: Any) -> bool:
    _, tensors = flatten_outputs(output)
    return any(t.dtype in LOW_PRECISION for t in tensors)


def float32_reference(original: nn.Module, inputs: list[Any]) -> Any:
    """The original module run in float32 on float32 copies of the inputs."""
    wide = copy.deepcopy(original).float()
    return wide(*[v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in inputs])


def compare_low_precision(
    expected: Any, actual: Any, reference: Any, override: Tolerance | None = None
) -> Comparison:
    """`actual` has `expected`'s structure, shapes and dtypes, and matches the float32 `reference` in value."""
    _, tensors_e = flatten_outputs(expected)
    kind_r, tensors_r = flatten_outputs(reference)
    wide = [r.to(e.dtype) if r.is_floating_point() else r for r, e in zip(tensors_r, tensors_e, strict=True)]
    result = compare_outputs(
        wide if kind_r == "list" else tuple(wide) if kind_r == "tuple" else wide[0], actual, override
    )
    if not result.ok:
        result.reason = f"vs float32 reference: {result.reason}"
    return result


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
    program: ModuleType,
    new_cls: type[nn.Module],
    original: nn.Module,
    device: str | torch.device,
    weight_seed: int | None = None,
    seed: int = 0,
) -> nn.Module:
    """The New module with the original's exact weights (strict state_dict load: same keys, same shapes).

    New is built under the original's seed and, with `weight_seed`, its own tensors are redrawn the way the
    original's were, so non-persistent buffers (not in the state_dict) agree too.
    """
    args, kwargs = init_inputs(program)
    torch.manual_seed(seed)
    new = new_cls(*args, **kwargs).to(device)
    if weight_seed is not None:
        randomize_weights(new, weight_seed)
    new.load_state_dict(original.state_dict(), strict=True)
    return new.eval()


def verify_pair(
    program: ModuleType,
    entry_point: str,
    new_cls: type[nn.Module],
    device: str | torch.device,
    check: CheckSettings | None = None,
) -> Comparison:
    """Compare original and New, weights randomized, on `check.seeds` fresh inputs; the first failure stops."""
    check = check or CheckSettings()
    original = build_original(program, entry_point, device)
    randomize_weights(original, check.weight_seed)
    new = build_new(program, new_cls, original, device, check.weight_seed)
    worst, max_abs = Comparison(ok=True), 0.0
    with torch.no_grad():
        for seed in check.seeds:
            inputs = fresh_inputs(program, seed, device)
            expected = original(*_clone(inputs))
            actual = new(*_clone(inputs))
            if is_low_precision(expected):
                reference = float32_reference(original, _clone(inputs))
                one = compare_low_precision(expected, actual, reference, check.tolerance)
            else:
                one = compare_outputs(expected, actual, check.tolerance)
            if not one.ok:
                one.reason = f"inputs seed {seed}: {one.reason}"
                return one
            max_abs = max(max_abs, one.max_abs_error)
            worst = one if one.max_rel_error >= worst.max_rel_error else worst
    worst.max_abs_error = max_abs
    return worst


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
