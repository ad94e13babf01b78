"""Choosing each sample's ops: the uniform (popcorn) sampler and the coverage-guided one."""

from synth_modules.sampling.coverage import CoverageSampler
from synth_modules.sampling.uniform import Sampler, UniformSampler, draw_count, sample_id, sample_rng

__all__ = ["CoverageSampler", "Sampler", "UniformSampler", "draw_count", "sample_id", "sample_rng"]
