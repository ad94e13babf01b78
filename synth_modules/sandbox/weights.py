"""Randomized weights for verification: no default initialisation left for a wrong kernel to hide behind.

Default initialisations are full of constants (norm weights 1, biases 0, BatchNorm statistics 0 and 1), so a
kernel that drops a zero bias or swaps two tensors that both start as ones computes exactly the right numbers.
`randomize_weights` redraws every floating parameter and buffer before a comparison. Each tensor is drawn from
its own generator, seeded by the verification seed and the tensor's name, so two modules with the same names
(reference and candidate, non-persistent buffers included) get identical values whatever order they visit their
tensors in. The draw keeps what the default promises about a tensor, so the program stays well defined:
- drawn by the default init (not constant): the same range when it is non-negative, else the same mean and
  standard deviation (uniform);
- all zero (biases, running means): uniform in [-0.5, 0.5];
- a non-zero constant c (norm weights, running variances, scales): c x uniform in [0.5, 1.5], so its sign, and a
  variance's positivity, are kept.
Tensors holding inf or NaN (masks) and integer tensors (counters, indices) are left alone.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator

import torch
from torch import nn

ZERO_HALF_RANGE = 0.5  # zeros become uniform in [-0.5, 0.5]
CONSTANT_SPREAD = 0.5  # a constant c becomes c x uniform in [1 - 0.5, 1 + 0.5]


def _name_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def floating_state(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every floating (or complex) parameter and buffer, persistent or not, once each."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if (tensor.is_floating_point() or tensor.is_complex()) and tensor.numel() > 0:
            yield name, tensor


def redraw(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
    """Fresh float64 values shaped like `values` (a real tensor), or None to leave it as it is."""
    values = values.detach().to("cpu", torch.float64)
    if not bool(values.isfinite().all()):
        return None
    noise = torch.rand(values.shape, generator=generator, dtype=torch.float64)
    low, high = float(values.min()), float(values.max())
    if high > low:
        if low >= 0:
            return low + (high - low) * noise
        mean, std = float(values.mean()), float(values.std())
        return mean + std * math.sqrt(3.0) * (2.0 * noise - 1.0)
    if low == 0:
        return ZERO_HALF_RANGE * (2.0 * noise - 1.0)
    return low * (1.0 + CONSTANT_SPREAD * (2.0 * noise - 1.0))


@torch.no_grad()
def randomize_weights(module: nn.Module, seed: int) -> list[str]:
    """Redraw `module`'s floating parameters and buffers in place; returns the names that were redrawn."""
    changed: list[str] = []
    for name, tensor in floating_state(module):
        target = torch.view_as_real(tensor) if tensor.is_complex() else tensor
        fresh = redraw(target, torch.Generator().manual_seed(_name_seed(seed, name)))
        if fresh is not None:
            target.copy_(fresh.to(device=target.device, dtype=target.dtype))
            changed.append(name)
    return changed
