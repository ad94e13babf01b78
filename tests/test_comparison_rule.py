"""The one comparison rule (sandbox/compare.py) and randomized verification weights (sandbox/weights.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synth_modules.sandbox.compare import EXACT, TOLERANCES, Tolerance, compare, tolerance
from synth_modules.sandbox.weights import randomize_weights

torch.set_num_threads(1)


def test_tolerance_table_by_dtype():
    assert tolerance(torch.float32) == Tolerance(1e-4, 1e-4)
    assert tolerance(torch.float16).rtol == pytest.approx(1e-2)
    assert 1e-2 <= tolerance(torch.bfloat16).rtol <= 2e-2
    assert tolerance(torch.float64).rtol < tolerance(torch.float32).rtol
    assert tolerance(torch.complex64) == TOLERANCES[torch.float32]
    assert tolerance(torch.int64) == EXACT and tolerance(torch.bool) == EXACT
    with pytest.raises(ValueError, match="add it to TOLERANCES"):
        tolerance(torch.float8_e4m3fn)


def test_absolute_part_follows_the_output_scale():
    ref = torch.tensor([1000.0, 0.0, -500.0])
    # an element that cancelled to ~0 may carry an error relative to the output's scale (1e-4 x 1000)
    assert compare(ref, ref + torch.tensor([0.0, 0.05, 0.0])).ok
    result = compare(ref, ref + torch.tensor([0.0, 0.5, 0.0]))
    assert not result.ok and result.max_abs_error == pytest.approx(0.5)
    assert result.scale == 1000.0 and result.atol == pytest.approx(0.1)
    assert result.tolerance == TOLERANCES[torch.float32]
    assert "1 of 3 values differ" in result.reason


def test_zeros_fail_however_small_the_outputs():
    """A fixed atol of 1e-3 let a zero kernel pass wherever the outputs are small; a scaled one does not."""
    ref = torch.randn(64, 64) * 1e-4
    assert (ref.abs() < 1e-3).all()
    assert not compare(ref, torch.zeros_like(ref)).ok
    assert compare(torch.zeros(8), torch.zeros(8)).ok  # an all-zero reference still matches itself


def test_float32_is_tight_and_half_precisions_loose():
    ref = torch.linspace(1, 2, 100)
    assert compare(ref, ref * (1 + 5e-5)).ok
    assert not compare(ref, ref * (1 + 5e-4)).ok
    half = ref.half()
    assert compare(half, half * 1.004).ok
    assert not compare(half, half * 1.05).ok
    ints = torch.arange(5)
    assert compare(ints, ints.clone()).ok
    assert not compare(ints, ints + torch.tensor([0, 0, 1, 0, 0])).ok


def test_complex_outputs_compare_as_real_views():
    ref = torch.randn(16, dtype=torch.complex64)
    assert compare(ref, ref.clone()).ok
    wrong_imag = ref + 1j * 0.1 * torch.ones(16)
    assert not compare(ref, wrong_imag).ok
    assert not compare(ref, ref.conj().resolve_conj()).ok  # same real part, imaginary sign flipped


def test_nan_only_where_the_reference_has_nan():
    ref = torch.tensor([1.0, float("nan"), 3.0, float("inf")])
    assert compare(ref, ref.clone()).ok  # NaN for NaN, the same infinity
    assert not compare(ref, torch.tensor([1.0, 2.0, 3.0, float("inf")])).ok  # NaN hidden
    extra = compare(ref, torch.tensor([float("nan"), float("nan"), 3.0, float("inf")]))
    assert not extra.ok and "NaN where the reference has none" in extra.reason
    assert not compare(ref, torch.tensor([1.0, float("nan"), 3.0, 1e30])).ok  # inf replaced by a number
    assert not compare(ref, torch.tensor([1.0, float("nan"), 3.0, -float("inf")])).ok


def test_structure_shape_dtype_and_override():
    ref = torch.randn(2, 3)
    assert compare(ref, ref.reshape(3, 2)).shape_mismatch
    assert compare([ref], [ref, ref]).shape_mismatch
    assert not compare(ref, ref.double()).ok and "dtype" in compare(ref, ref.double()).reason
    loose = Tolerance(1e-2, 1e-2)
    assert not compare(ref, ref * 1.005).ok
    assert compare(ref, ref * 1.005, override=loose).ok
    result = compare([ref, torch.arange(3)], [ref * 1.005, torch.arange(3)], override=loose)
    assert result.ok and result.tolerance == loose and result.max_rel_error > 0
    assert result.to_dict()["tolerance"] == {"rtol": 1e-2, "scale_atol": 1e-2}


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8)
        self.norm = nn.LayerNorm(8)
        self.register_buffer("mask", torch.tensor([0.0, float("-inf")]))
        self.register_buffer("offset", torch.zeros(8), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.bn(self.linear(x))) + self.offset


def test_randomized_weights_leave_no_default_constant():
    net = _Net()
    default = {k: v.clone() for k, v in net.state_dict().items()}
    changed = randomize_weights(net, seed=3)
    assert set(changed) == {
        "linear.weight", "linear.bias", "bn.weight", "bn.bias", "norm.weight", "norm.bias",
        "bn.running_mean", "bn.running_var", "offset",
    }  # fmt: skip
    state = net.state_dict()
    for name in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "norm.weight", "norm.bias"):
        assert state[name].unique().numel() == 8, name  # no constant left
    assert (state["bn.running_var"] > 0).all() and (state["bn.weight"] > 0).all()  # signs kept
    assert not torch.equal(state["linear.weight"], default["linear.weight"])
    bound = 1 / 8**0.5  # a drawn default keeps its range
    assert state["linear.weight"].abs().max() <= bound * 1.8
    assert torch.equal(state["mask"], default["mask"])  # -inf mask untouched
    assert torch.equal(state["bn.num_batches_tracked"], default["bn.num_batches_tracked"])
    assert net.offset.abs().max() > 0


def test_randomization_is_by_name_so_both_sides_agree():
    """Same names, same defaults -> same values, whatever else the module holds (non-persistent buffers too)."""
    torch.manual_seed(0)
    first = _Net()
    torch.manual_seed(0)
    second = nn.Sequential()  # other modules, other registration order, the same names
    second.register_buffer("offset", torch.zeros(8), persistent=False)
    second.add_module("norm", nn.LayerNorm(8))
    randomize_weights(first, seed=3)
    randomize_weights(second, seed=3)
    assert torch.equal(first.offset, second.offset)
    assert torch.equal(first.norm.weight, second.norm.weight) and torch.equal(
        first.norm.bias, second.norm.bias
    )
    third = _Net()
    randomize_weights(third, seed=4)
    assert not torch.equal(first.bn.running_var, third.bn.running_var)


class _SwappedBatchNorm(nn.Module):
    """A wrong kernel: BatchNorm with its weight and running variance exchanged (both 1 by default)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        return (x - bn.running_mean) / torch.sqrt(bn.weight + bn.eps) * bn.running_var + bn.bias


def test_a_swap_of_tensors_initialised_alike_passes_default_weights_only():
    reference, wrong = nn.Sequential(nn.BatchNorm1d(8)).eval(), _SwappedBatchNorm().eval()
    wrong.load_state_dict({f"bn.{k.split('.', 1)[1]}": v for k, v in reference.state_dict().items()})
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert compare(reference(x), wrong(x)).ok  # invisible with ones and zeros
        randomize_weights(reference, seed=1)
        wrong.load_state_dict({f"bn.{k.split('.', 1)[1]}": v for k, v in reference.state_dict().items()})
        assert not compare(reference(x), wrong(x)).ok
