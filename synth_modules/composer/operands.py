"""Choosing the second input of a binary op: a constant, a learnable tensor, another activation, or x itself."""

from __future__ import annotations

import random

from operators.shapes import MAX_PARAMS, numel
from operators.spec import OpSpec, Values
from synth_modules.composer.graph import Graph, OperandChoice
from synth_modules.composer.semantics import OperandInfo
from synth_modules.composer.state import TensorState

_PARAM_VALUES = {
    "small": Values(0.0, 0.02),
    "unit": Values(0.0, 1.0),
    "ones_jitter": Values(1.0, 0.1),
    "positive": Values(1.0, 0.29, 0.5, 1.5),
}


def _overlaps(a: Values, b: Values) -> bool:
    """The typical ranges of two tensors overlap by a fair margin (so max/min take from both)."""
    lo = max(a.mean - 1.5 * a.std, b.mean - 1.5 * b.std)
    hi = min(a.mean + 1.5 * a.std, b.mean + 1.5 * b.std)
    return hi - lo > 0.5 * min(a.std, b.std)


def _shared_shift(a: TensorState, b: TensorState) -> bool:
    """Both carry the same learnable shift: a - b cancels it (conv(x) - roll(conv(x)) kills the conv bias)."""
    shifts = {(p.node, p.kind) for p in a.pending if p.kind == "shift"}
    return any((p.node, p.kind) in shifts for p in b.pending)


class OperandPicker:
    """Picks operands for the graph being composed (tensor operands come from values already defined)."""

    def __init__(self, rng: random.Random, graph: Graph, positional: set[int]) -> None:
        self.rng = rng
        self.graph = graph
        self._positional = positional

    def pick(self, spec: OpSpec, state: TensorState) -> tuple[OperandChoice, OperandInfo] | None:
        rng = self.rng
        assert spec.operand is not None
        kinds = list(spec.operand.kinds)
        rng.shuffle(kinds)
        weights = {"tensor": 0.45, "param": 0.5, "scalar": 0.4, "self": 0.35}
        kinds.sort(key=lambda k: -weights[k] * rng.random())
        for kind in kinds:
            picked = self.of_kind(spec, state, kind)
            if picked is not None:
                return picked
        return None

    def of_kind(
        self, spec: OpSpec, state: TensorState, kind: str
    ) -> tuple[OperandChoice, OperandInfo] | None:
        rng = self.rng
        operand = spec.operand
        assert operand is not None
        if kind == "self":
            return OperandChoice("self"), OperandInfo("self", state.values, state=state)
        if kind == "tensor":
            options = [
                vid
                for vid, st in self.graph.states.items()
                if vid not in self._positional
                and st.dtype == "float"
                and st.shape == state.shape
                and st.affine_key != state.affine_key
                and st.elementwise_key != state.elementwise_key
                and st.key != state.key
                and self._is_defined(vid)
                and (not operand.overlap or _overlaps(st.values, state.values))
                and not (spec.name == "sub" and _shared_shift(st, state))
            ]
            if not options:
                return None
            vid = rng.choice(options[-4:])
            other = self.graph.states[vid]
            return OperandChoice("tensor", value=vid), OperandInfo("tensor", other.values, state=other)
        if kind == "scalar":
            lo, hi = operand.scalar_range
            value = rng.uniform(lo, hi)
            if operand.signed and rng.random() < 0.3:
                value = -value
            value = float(f"{value:.3g}")
            choice = OperandChoice("scalar", scalar=value, inline=rng.random() < 0.3)
            return choice, OperandInfo("scalar", Values(value, 0.0, value, value))
        shape, axes = self._param_shape(state, full=operand.param_full)
        if numel(shape) > MAX_PARAMS:
            return None
        init, values = operand.param_init, _PARAM_VALUES.get(operand.param_init)
        if init == "centered":  # drawn around the data so max/min pick from both sides
            mean, std = float(f"{state.values.mean:.3g}"), float(f"{max(state.values.std, 1e-2):.3g}")
            init, values = f"centered:{mean}:{std}", Values(mean, std)
        assert values is not None
        choice = OperandChoice("param", param_shape=shape, param_init=init, inline=rng.random() < 0.25)
        return choice, OperandInfo("param", values, axes=axes)

    def _is_defined(self, vid: int) -> bool:
        return vid in self.graph.producers or any(i.value == vid for i in self.graph.inputs)

    def _param_shape(self, state: TensorState, full: bool) -> tuple[tuple[int, ...], frozenset[int]]:
        rank, shape = state.rank, state.shape
        options: list[tuple[tuple[int, ...], frozenset[int]]] = [
            (tuple(shape[1:]), frozenset(range(1, rank)))
        ]
        if not full:
            options.append(((shape[-1],), frozenset({rank - 1})))
            options.append(((1,), frozenset()))
            if rank >= 3:
                options.append(((shape[1],) + (1,) * (rank - 2), frozenset({1})))
                options.append(((shape[1],) + (1,) * (rank - 2), frozenset({1})))
        return self.rng.choice(options)
