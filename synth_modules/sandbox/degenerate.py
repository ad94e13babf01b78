"""Degenerate-output checks: outputs a kernel optimizer could match with an all-zero (or constant) kernel.

A program is degenerate when an output is empty or non-finite, constant or near zero, does not change when the
input changes, or when a learnable parameter has no effect on the outputs (its gradient is None or zero). Each
check returns a reason string, or None when the program passes it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from synth_modules.sandbox.compare import identical

NEAR_ZERO = 1e-6  # max |output| below this is "near zero"
CONSTANT_SPREAD = 1e-5  # (max - min) below this fraction of max |output| is "constant"
DEAD_GRAD_FRACTION = 1e-5  # a parameter whose max |grad| is below this fraction of the largest one is dead


def _real(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return torch.view_as_real(t) if t.is_complex() else t


def empty_or_nonfinite(outputs: list[torch.Tensor]) -> str | None:
    for i, out in enumerate(outputs):
        if out.numel() == 0:
            return f"output {i} is empty (shape {list(out.shape)})"
        real = _real(out)
        if real.is_floating_point():
            bad = ~torch.isfinite(real)
            if bool(bad.any()):
                nan = int(torch.isnan(real).sum())
                return f"output {i} has {int(bad.sum())} non-finite values ({nan} NaN) of {real.numel()}"
    return None


def constant_or_zero(outputs: list[torch.Tensor]) -> str | None:
    for i, out in enumerate(outputs):
        real = _real(out)
        if not real.is_floating_point():
            if real.numel() > 1 and bool((real == real.reshape(-1)[0]).all()):
                return f"output {i} is constant ({real.reshape(-1)[0].item()})"
            continue
        values = real.double()
        peak = float(values.abs().max())
        if peak < NEAR_ZERO:
            return f"output {i} is near zero (max |x| = {peak:.3g})"
        spread = float(values.max() - values.min())
        if values.numel() > 1 and spread <= CONSTANT_SPREAD * peak:
            return f"output {i} is constant (spread {spread:.3g} at magnitude {peak:.3g})"
    return None


def input_independent(outputs: list[torch.Tensor], other_outputs: list[torch.Tensor]) -> str | None:
    """`other_outputs` come from inputs drawn with another seed; an output that did not move is degenerate."""
    for i, (a, b) in enumerate(zip(outputs, other_outputs, strict=True)):
        if identical([a], [b]):
            return f"output {i} does not depend on the input (a second input seed gives the same output)"
    return None


def dead_parameters(
    model: torch.nn.Module, forward: Callable[[], list[torch.Tensor]], seed: int = 1234
) -> str | None:
    """Backpropagate a random projection of the outputs; every learnable parameter must receive a gradient.

    A random projection (not a plain sum) avoids false alarms from outputs whose sum is constant by design
    (softmax rows), while a bias cancelled by a following normalization still gets a (near) zero gradient.
    """
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad and p.numel() > 0]
    if not params:
        return None
    for _, p in params:
        p.grad = None
    with torch.enable_grad():
        outputs = forward()
        leaves = [o for o in outputs if o.requires_grad and (o.is_floating_point() or o.is_complex())]
        if not leaves:
            return "no output is differentiable with respect to the learnable parameters"
        gen = torch.Generator(device="cpu").manual_seed(seed)
        total = torch.zeros((), dtype=torch.float64, device=leaves[0].device)
        for out in leaves:
            real = torch.view_as_real(out) if out.is_complex() else out
            weights = torch.randn(real.shape, generator=gen, dtype=torch.float64).to(real.device)
            total = total + (real.double() * weights).sum()
        total.backward()
    peaks = {name: (float(p.grad.detach().abs().max()) if p.grad is not None else None) for name, p in params}
    largest = max((v for v in peaks.values() if v is not None and v == v), default=0.0)
    dead = [
        name
        for name, peak in peaks.items()
        if peak is None or peak == 0.0 or peak < DEAD_GRAD_FRACTION * largest
    ]
    if dead:
        shown = ", ".join(dead[:5]) + (f" and {len(dead) - 5} more" if len(dead) > 5 else "")
        return f"learnable parameter(s) with no effect on the output (zero or missing gradient): {shown}"
    return None


def axis_invariant(outputs: list[torch.Tensor]) -> str | None:
    """An output that does not vary along one of its axes (every slice the same): a broadcast, not a result."""
    for i, out in enumerate(outputs):
        real = _real(out)
        if not real.is_floating_point() or real.numel() < 2:
            continue
        values = real.double()
        scale = float(values.abs().max())
        for axis, size in enumerate(values.shape):
            if size > 1 and float(values.std(dim=axis).max()) <= CONSTANT_SPREAD * scale:
                return f"output {i} does not vary along axis {axis} (size {size})"
    return None
