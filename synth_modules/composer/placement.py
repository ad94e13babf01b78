"""A planned op: what the composer has decided before adding it to the graph."""

from __future__ import annotations

from dataclasses import dataclass, field

from operators.spec import Args, OpSpec
from synth_modules.composer.graph import OperandChoice
from synth_modules.composer.semantics import OperandInfo
from synth_modules.composer.state import Pending


@dataclass
class Placement:
    """An op ready to be added: prepared args, output shape, operand and what it must switch off."""

    spec: OpSpec
    args: Args
    out_shape: tuple[int, ...]
    operand: OperandChoice | None = None
    operand_info: OperandInfo | None = None
    neutralize: list[Pending] = field(default_factory=list)
