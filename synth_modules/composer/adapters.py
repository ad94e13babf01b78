"""Candidate adapter ops: what the composer may insert so the next op fits (rank, size, value domain, facts).

Every adapter is an ordinary catalog op (Flatten, unsqueeze, mean, AdaptiveAvgPool2d, MaxPool2d, Sigmoid, ...)
and shows up in the final pattern like any other op.
"""

from __future__ import annotations

import random

from operators.shapes import MAX_NUMEL, factor_pairs, numel
from operators.spec import Args
from synth_modules.composer.state import TensorState

Move = tuple[str, Args]

# Ops that fix a value-domain problem, by the domain the next op needs.
DOMAIN_FIXES: dict[str, tuple[str, ...]] = {
    "positive": ("Sigmoid", "Softplus", "exp"),
    "nonnegative": ("ReLU", "abs", "Sigmoid", "Softplus"),
    "bounded": ("Tanh", "Sigmoid", "Hardtanh", "clamp", "Softsign"),
    "has_positive": ("Tanh", "abs", "Softplus"),
    "has_negative": ("LayerNorm", "Tanh", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
    "not_small": ("LayerNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
    "unit_scale": ("LayerNorm", "Tanh", "Softsign"),
    "positive_away": ("Sigmoid", "Softplus", "exp", "Tanh", "Hardtanh", "clamp"),
    "calm": ("LayerNorm", "Tanh", "Softsign", "Sigmoid"),
    "active": ("LayerNorm", "Softsign", "Tanh"),
    "attention_calm": ("LayerNorm", "Tanh", "Softsign", "normalize"),
    "no_zero_floor": ("GELU", "ELU", "SiLU", "Tanh"),
}

# Nonlinearities that clear facts and pending learnable shifts (so a later reduction/normalization is safe).
BREAKERS: tuple[str, ...] = ("GELU", "Tanh", "SiLU", "ELU", "Mish", "LeakyReLU", "Sigmoid")


def shape_moves(state: TensorState) -> list[Move]:
    """Rank and size adapters for `state` (batch axis 0 is never touched)."""
    rank, shape = state.rank, state.shape
    moves: list[Move] = []
    if rank >= 3:
        for start in range(1, rank - 1):
            for end in range(start + 1, rank):
                moves.append(("Flatten", {"start_dim": start, "end_dim": end}))
        for axis in range(1, rank):
            moves.append(("mean", {"dim": axis, "keepdim": False}))
            moves.append(("amax", {"dim": axis, "keepdim": False}))
        for d0 in range(1, rank):
            for d1 in range(d0 + 1, rank):
                moves.append(("transpose", {"dim0": d0, "dim1": d1}))
    if 3 <= rank <= 5:
        nd = rank - 2
        moves.append((f"AdaptiveAvgPool{nd}d", {"output_size": 1}))
        if min(shape[2:]) >= 4:
            moves.append((f"MaxPool{nd}d", {"kernel_size": 2}))
            moves.append((f"AvgPool{nd}d", {"kernel_size": 2}))
        if numel(shape) * 2**nd <= MAX_NUMEL:
            moves.append(("interpolate", {"scale_factor": 2, "mode": "nearest"}))
    if rank == 2 and shape[1] >= 4:
        moves.append(("mean", {"dim": 1, "keepdim": True}))
    if 1 <= rank <= 4:
        for axis in range(1, rank + 1):
            moves.append(("unsqueeze", {"dim": axis}))
        for axis in range(1, rank):
            for p, q in factor_pairs(shape[axis])[:3]:
                moves.append(("Unflatten", {"dim": axis, "unflattened_size": (p, q)}))
    for axis in range(1, rank):
        if shape[axis] == 1:
            moves.append(("squeeze", {"dim": axis}))
    return moves


def domain_moves(domain: str, rng: random.Random) -> list[Move]:
    key = "active" if domain.startswith("active:") else domain
    return [(name, {}) for name in DOMAIN_FIXES.get(key, ())]


def breaker_moves(rng: random.Random) -> list[Move]:
    names = list(BREAKERS)
    rng.shuffle(names)
    return [(name, {}) for name in names[:3]]
