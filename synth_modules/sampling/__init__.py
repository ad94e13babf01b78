"""Choosing each sample's ops: the uniform (popcorn) sampler and the coverage-guided one."""

from synth_modules.sampling.coverage import CoverageSampler
from synth_modules.sampling.dtypes import PROGRAM_DTYPES, sample_dtype
from synth_modules.sampling.uniform import Sampler, UniformSampler, draw_count, sample_id, sample_rng

__all__ = [
    "PROGRAM_DTYPES",
    "CoverageSampler",
    "Sampler",
    "UniformSampler",
    "draw_count",
    "sample_dtype",
    "sample_id",
    "sample_rng",
]
