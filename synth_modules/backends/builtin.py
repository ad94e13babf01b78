"""The default, offline backend: the shape-aware composer (no network, no key, milliseconds per program)."""

from __future__ import annotations

import hashlib
import json

from synth_modules.backends.base import Backend
from synth_modules.composer import compose
from synth_modules.config import GeneratorConfig
from synth_modules.sampling import sample_dtype, sample_rng
from synth_modules.types import Generation, GenerationRequest, Usage


class BuiltinBackend(Backend):
    """Composes a program for the sampled pattern.

    Each attempt uses its own RNG stream (`compose:<attempt>`), so a repair request after a failed validation
    gives a different, equally deterministic program; later attempts also decorate less.
    """

    name = "builtin"
    model = "builtin-composer-v1"
    supports_repair = True

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self._usage = Usage()

    async def generate(self, request: GenerationRequest) -> Generation:
        sample = request.sample
        salt = f"compose:{request.attempt}"
        rng = sample_rng(sample.seed, sample.index, salt)
        dtype = request.dtype or sample_dtype(self.config.dtype, sample.seed, sample.index)
        result = compose(sample, rng, attempt=request.attempt, dtype=dtype)
        description = json.dumps(
            {
                "composer": self.model,
                "seed": sample.seed,
                "index": sample.index,
                "attempt": request.attempt,
                "core_ops": sample.core_ops,
                "compound_ops": sample.compound_ops,
                "supporting_ops": sample.supporting_ops,
                **({} if dtype == "float32" else {"dtype": dtype}),
            },
            sort_keys=True,
        )
        self._usage.calls += 1
        return Generation(
            source=result.source,
            entry_point=result.entry_point,
            final_pattern=result.final_pattern,
            backend=self.name,
            model=self.model,
            prompt_sha256=hashlib.sha256(description.encode()).hexdigest(),
            prompt=description,
            usage=Usage(calls=1),
            expected_output_shapes=result.output_shapes,
        )

    def usage(self) -> Usage:
        return self._usage
