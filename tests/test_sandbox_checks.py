"""The sandbox's output checks, in process: tolerances, determinism, degenerate outputs, dead parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from synth_modules.sandbox import degenerate
from synth_modules.sandbox.compare import OutputError, compare, flatten_outputs, identical, tolerance

torch.set_num_threads(1)


def test_tolerances_follow_dtype():
    assert tolerance(torch.float32) == (1e-3, 1e-3)
    assert tolerance(torch.float16)[0] > tolerance(torch.float32)[0]
    assert tolerance(torch.bfloat16)[0] >= tolerance(torch.float16)[0]
    assert tolerance(torch.int64) == (0.0, 0.0)
    assert tolerance(torch.bool) == (0.0, 0.0)


def test_compare_float32_scaled_atol():
    ref = torch.tensor([1000.0, 0.0, -500.0])
    # an error of 0.5 on an element that cancelled to ~0 is fine at output scale 1000 (atol = 1.0)
    assert compare([ref], [ref + torch.tensor([0.0, 0.5, 0.0])]).ok
    result = compare([ref], [ref + torch.tensor([0.0, 5.0, 0.0])])
    assert not result.ok and result.max_abs_err == pytest.approx(5.0)
    assert "1 of 3 values differ" in result.message


def test_compare_half_is_looser_and_integers_exact():
    ref = torch.linspace(1, 2, 10, dtype=torch.float16)
    assert compare([ref], [ref * 1.005]).ok
    assert not compare([ref.float()], [ref.float() * 1.005]).ok
    ints = torch.arange(5)
    assert compare([ints], [ints.clone()]).ok
    assert not compare([ints], [ints + torch.tensor([0, 0, 1, 0, 0])]).ok


def test_compare_shape_dtype_count_and_nan():
    ref = torch.randn(2, 3)
    assert compare([ref], [ref.reshape(3, 2)]).shape_mismatch
    assert compare([ref], [ref, ref]).shape_mismatch
    assert not compare([ref], [ref.double()]).ok
    assert not compare([ref], [torch.full_like(ref, float("nan"))]).ok


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
