"""The sandbox's output checks, in process: determinism, degenerate outputs, dead parameters (the comparison
rule itself: test_comparison_rule.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from synth_modules.sandbox import degenerate
from synth_modules.sandbox.compare import OutputError, flatten_outputs, identical

torch.set_num_threads(1)


def test_identical_and_flatten():
    a = torch.randn(4, 4)
    assert identical([a], [a.clone()])
    assert identical([a], [a + 1e-9])
    assert not identical([a], [a + 1e-3])
    nan = torch.tensor([float("nan"), 1.0])
    assert identical([nan], [nan.clone()])  # NaN in both runs is deterministic (and caught as degenerate)
    assert len(flatten_outputs((a, [a, (a,)]))) == 3
    with pytest.raises(OutputError):
        flatten_outputs({"x": a})


def test_degenerate_output_checks():
    assert degenerate.empty_or_nonfinite([torch.empty(0, 3)])
    assert "NaN" in degenerate.empty_or_nonfinite([torch.tensor([1.0, float("nan")])])
    assert degenerate.empty_or_nonfinite([torch.tensor([1.0, float("inf")])])
    assert degenerate.empty_or_nonfinite([torch.randn(3)]) is None
    assert "near zero" in degenerate.constant_or_zero([torch.full((4,), 1e-9)])
    assert "constant" in degenerate.constant_or_zero([torch.full((4,), 3.0)])
    assert "constant" in degenerate.constant_or_zero([torch.ones(8) + 1e-8 * torch.randn(8)])
    assert degenerate.constant_or_zero([torch.full((3,), 2, dtype=torch.int64)])
    assert degenerate.constant_or_zero([torch.randn(8)]) is None
    assert degenerate.constant_or_zero([torch.tensor([0.7])]) is None  # a lone scalar is not "constant"
    x = torch.randn(5)
    assert degenerate.input_independent([x], [x.clone()])
    assert degenerate.input_independent([x], [torch.randn(5)]) is None


class _Cancelled(nn.Module):
    """A conv bias followed by InstanceNorm: the bias cancels, its gradient is ~1e-7 of the others."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.norm = nn.InstanceNorm2d(6, affine=True)

    def forward(self, x):
        return self.norm(self.conv(x))


class _SoftmaxRows(nn.Module):
    """Rows sum to one, so a plain-sum loss would give zero gradients: the random projection must not."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=-1)


class _Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(4, 4)
        self.unused = nn.Parameter(torch.randn(4))

    def forward(self, x):
        return self.used(x)


class _ArgmaxOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x).argmax(dim=-1)


@pytest.mark.parametrize(
    ("model", "shape", "dead"),
    [
        (_Cancelled(), (2, 3, 10, 10), "conv.bias"),
        (_SoftmaxRows(), (4, 8), None),
        (_Unused(), (3, 4), "unused"),
        (_ArgmaxOnly(), (3, 4), "no output is differentiable"),
    ],
    ids=["cancelled_bias", "softmax_rows", "unused", "argmax"],
)
def test_dead_parameters(model, shape, dead):
    torch.manual_seed(0)
    model.eval()
    x = torch.randn(shape)
    problem = degenerate.dead_parameters(model, lambda: flatten_outputs(model(x)))
    if dead is None:
        assert problem is None
    else:
        assert problem is not None and dead in problem
