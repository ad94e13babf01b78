"""Each sample's program dtype: the configured one, or with `dtype=mixed` one drawn from the sample's own stream."""

from __future__ import annotations

from synth_modules.sampling.uniform import sample_rng

PROGRAM_DTYPES = ("float32", "bfloat16", "float16")


def sample_dtype(setting: str, seed: int, index: int) -> str:
    """The dtype of sample `index` under the config's `dtype` setting (float32|bfloat16|float16|mixed)."""
    if setting == "mixed":
        return sample_rng(seed, index, "dtype").choice(PROGRAM_DTYPES)
    if setting not in PROGRAM_DTYPES:
        raise ValueError(
            f"unknown program dtype {setting!r}; choose one of {', '.join(PROGRAM_DTYPES)}, mixed"
        )
    return setting
