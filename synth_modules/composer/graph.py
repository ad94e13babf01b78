"""The composed program as a small dataflow graph: program inputs, op nodes and the values they produce."""

from __future__ import annotations

from dataclasses import dataclass, field

from operators.spec import Args, OpSpec
from synth_modules.composer.state import TensorState


@dataclass
class OperandChoice:
    """The concrete second input of a binary op."""

    kind: str  # scalar | param | tensor | self
    value: int | None = None  # value id for "tensor"
    scalar: float | None = None
    param_shape: tuple[int, ...] | None = None
    param_init: str = "small"
    inline: bool = False  # scalar written as a literal rather than an __init__ argument


@dataclass
class Node:
    id: int
    spec: OpSpec
    args: Args
    style: str  # module | functional
    form: str  # forward template (functional form, or the module call form)
    input: int  # value id of the primary input
    output: int  # value id produced
    operand: OperandChoice | None = None
    derived: dict[str, tuple[int, str]] = field(default_factory=dict)  # arg -> (node id, arg) it equals
    literal_args: frozenset[str] = frozenset()  # hyper-parameters written inline for variety
    keywords: bool = False  # write module constructor arguments as keywords

    @property
    def pattern(self) -> list[str]:
        return [*self.spec.implies, self.spec.name]


@dataclass
class ProgramInput:
    value: int
    shape: tuple[int, ...]
    dtype: str = "float"  # float | long
    high: int = 0  # exclusive upper bound of integer inputs
    kind: str = "randn"  # randn | rand | randint


@dataclass
class Graph:
    inputs: list[ProgramInput] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    states: dict[int, TensorState] = field(default_factory=dict)  # value id -> state
    producers: dict[int, int] = field(default_factory=dict)  # value id -> node id
    outputs: list[int] = field(default_factory=list)
    _next_value: int = 0

    def new_value(self, state: TensorState) -> int:
        vid = self._next_value
        self._next_value += 1
        self.states[vid] = state
        return vid

    def add_input(self, state: TensorState, high: int = 0, kind: str = "randn") -> int:
        vid = self.new_value(state)
        self.inputs.append(ProgramInput(vid, state.shape, state.dtype, high, kind))
        return vid

    def add_node(self, node: Node) -> None:
        self.nodes.append(node)
        self.producers[node.output] = node.id

    def node(self, node_id: int) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def pattern(self) -> list[str]:
        """Ops actually used, in forward order (canonical names)."""
        out: list[str] = []
        for n in self.nodes:
            out.extend(n.pattern)
        return out

    def uses(self) -> dict[int, list[int]]:
        """value id -> node ids that read it (primary input or operand)."""
        out: dict[int, list[int]] = {}
        for n in self.nodes:
            out.setdefault(n.input, []).append(n.id)
            if n.operand is not None and n.operand.kind == "tensor" and n.operand.value is not None:
                out.setdefault(n.operand.value, []).append(n.id)
        return out
