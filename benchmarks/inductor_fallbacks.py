"""Which catalog ops reach Inductor as ATen fallbacks: compose a small program around each sampleable op, trace it
with Inductor's decomposition table and look up every ATen op in Inductor's lowering registry.

Prints, per op, its catalog status and the fallback / unlowered ATen ops found, and flags ops marked `native`
whose graph has a registered fallback (the catalog's `inductor` field should then say `fallback` and why).

    .venv/bin/python benchmarks/inductor_fallbacks.py
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch._inductor import lowering
from torch._inductor.decomposition import select_decomp_table
from torch.fx.experimental.proxy_tensor import make_fx

import operators
from synth_modules.composer import compose
from synth_modules.types import Sample


def aten_ops(op: operators.OpSpec, tries: int = 6) -> set[str] | None:
    """Classified ATen ops of a traced program containing `op` (None when no program could be composed)."""
    decompositions = select_decomp_table()
    for seed in range(tries):
        kind = op.kind.value
        sample = Sample(
            0,
            "probe",
            0,
            [op.name] if kind == "core" else ["Linear"],
            [op.name] if kind == "compound" else [],
            [op.name] if kind == "supporting" else [],
        )
        composed = compose(sample, random.Random(seed))
        if op.name not in composed.final_pattern:
            continue
        namespace: dict = {}
        exec(compile(composed.source, "probe.py", "exec"), namespace)  # our own composed program
        args, kwargs = namespace["get_init_inputs"]()
        model = namespace[composed.entry_point](*args, **kwargs).eval()
        with torch.no_grad():
            graph = make_fx(model, decomposition_table=decompositions)(*namespace["get_inputs"]())
        found = set()
        for node in graph.graph.nodes:
            if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload):
                if node.target in lowering.fallbacks:
                    found.add(f"fallback:{node.target}")
                elif node.target not in lowering.lowerings:
                    found.add(f"unlowered:{node.target}")
        return found
    return None


def main() -> int:
    torch.set_num_threads(1)
    suspicious = []
    for op in operators.all_ops(include_unsupported=False):
        found = aten_ops(op)
        if found is None:
            print(f"{op.name}: could not compose a probe program")
            continue
        if found:
            print(f"{op.name} [{op.inductor.status}]: {', '.join(sorted(found))}")
        if op.inductor.status == "native" and any(f.startswith("fallback:") for f in found):
            suspicious.append(op.name)
    print("marked native but traced to a registered fallback:", suspicious or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
