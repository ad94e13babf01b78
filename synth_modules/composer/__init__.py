"""The built-in shape-aware composer: turns a sampled op pattern into a valid, varied program file.

    from synth_modules.composer import compose
    result = compose(sample, rng)       # rng = sample_rng(sample.seed, sample.index, f"compose:{attempt}")
    result.source, result.final_pattern, result.output_shapes

Split by responsibility: `state` (what is known about a tensor), `semantics` (degeneracy rules and state
transfer), `adapters` (candidate adapter ops), `planner` (the composition algorithm), `graph` (the program as
a dataflow graph), `emit` / `render` (code generation).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from synth_modules.composer.planner import Composer
from synth_modules.composer.render import render
from synth_modules.program import make_entry_point
from synth_modules.types import Sample

__all__ = ["Composition", "compose"]


@dataclass
class Composition:
    """A composed program and what the composer knows about it."""

    source: str
    entry_point: str
    final_pattern: list[str]
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    dropped: list[str] = field(default_factory=list)  # sampled ops that could not be placed
    dtype: str = "float32"


def compose(sample: Sample, rng: random.Random, attempt: int = 0, dtype: str = "float32") -> Composition:
    """Compose a program for `sample` in `dtype`; deterministic for a given rng state."""
    composer = Composer(rng, attempt=attempt, dtype=dtype)
    graph = composer.compose(list(sample.core_ops), list(sample.compound_ops), list(sample.supporting_ops))
    pattern = graph.pattern()
    entry_point = make_entry_point(pattern, sample.id)
    docstring = " -> ".join(pattern) if rng.random() < 0.5 else ""
    program = render(graph, entry_point, rng, docstring=docstring, dtype=dtype)
    return Composition(
        source=program.source,
        entry_point=entry_point,
        final_pattern=pattern,
        input_shapes=program.input_shapes,
        output_shapes=program.output_shapes,
        dropped=list(composer.dropped),
        dtype=dtype,
    )
