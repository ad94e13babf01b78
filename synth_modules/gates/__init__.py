"""Quality gates applied to validated programs: KernelBench contamination and duplicates.

Each gate is one file; `build_gates` turns the config into the ordered list the pipeline applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth_modules.gates.base import Gate, GateInput

if TYPE_CHECKING:
    from synth_modules.config import GeneratorConfig

__all__ = ["Gate", "GateInput", "build_gates", "contamination_levels"]


def contamination_levels(setting: str) -> set[str]:
    """`"l1,l2"` -> {"l1", "l2"}; `"off"` -> set()."""
    levels = {part.strip().lower() for part in setting.split(",") if part.strip()}
    return set() if levels <= {"off", ""} else levels


def build_gates(config: GeneratorConfig) -> list[Gate]:
    """Gates in the order they run: contamination (stateless, cheap) before dedup (stateful)."""
    gates: list[Gate] = []
    levels = contamination_levels(config.contamination)
    if levels:
        from synth_modules.gates.contamination import ContaminationGate

        gates.append(ContaminationGate(levels, config.contamination_strictness))
    if config.dedup:
        from synth_modules.gates.dedup import DedupGate

        gates.append(DedupGate(config.dedup_threshold))
    return gates
