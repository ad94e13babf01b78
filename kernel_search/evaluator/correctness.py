"""Correctness primitives: randomized shared weights, fresh input sets, poisoned memory, output comparison.

Everything here is plain torch on whatever device the tensors live on, so CI exercises it on CPU. The worker
(worker.py) decides the order: candidate first on poisoned memory, then the reference, then the comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kernel_search.evaluator.poison import HEAP_POISON_16, POISON_16

_POISON_POOL_BYTES = 256 << 20  # CUDA: one large block the caching allocator will carve outputs from
_POISON_COPIES_CUDA, _POISON_COPIES_CPU = 32, 4  # poisoned blocks per expected output size
_POISON_MAX_BYTES = 1 << 30
# dtype -> (rtol, atol as a fraction of max |reference|)
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1e-4, 1e-4),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
}
# What a half-precision computation of an fp32 task still passes (tells a downcast from a plain bug).
LOOSE_TOLERANCE = (3e-2, 3e-2)
_MIN_ATOL = 1e-6


class OutputTypeError(TypeError):
    """The forward returned something other than exact torch.Tensors (or a tuple/list of them)."""


@dataclass
class Comparison:
    ok: bool
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    message: str = ""


# --- weights ------------------------------------------------------------------------------------------------
def randomize_weights(module: nn.Module, seed: int) -> None:
    """Redraw every floating parameter and buffer (not the default init), keeping each one's sign pattern.

    A tensor that is all >= 0 by default (norm weights, running variances, counts) stays positive; others are
    drawn normal with the default's spread (at least 0.02), so ones-and-zeros defaults cannot hide bugs.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point() or tensor.numel() == 0:
                continue
            default = tensor.detach().float().cpu()
            scale = max(
                float(default.std()) if default.numel() > 1 else 0.0, float(default.abs().mean()), 0.02
            )
            if bool((default >= 0).all()):
                fresh = torch.rand(tensor.shape, generator=generator) * scale + 0.5 * scale
            else:
                fresh = torch.randn(tensor.shape, generator=generator) * scale
            tensor.copy_(fresh.to(tensor.dtype))


def share_weights(reference: nn.Module, candidate: nn.Module) -> str:
    """Give `candidate` the reference's exact weights; returns how (state_dict or positional).

    The same keys load directly; a candidate that renamed its tensors gets them in order when the shapes and
    dtypes line up one to one. Anything else is a ValueError: unshared weights would make the check vacuous.
    """
    ref_state = reference.state_dict()
    cand_state = candidate.state_dict()
    if set(ref_state) == set(cand_state):
        wrong = [
            k
            for k, v in ref_state.items()
            if v.shape != cand_state[k].shape or v.dtype != cand_state[k].dtype
        ]
        if wrong:
            raise ValueError(f"ModelNew's {', '.join(wrong[:3])} differ from Model's in shape or dtype")
        candidate.load_state_dict(ref_state, strict=True)
        return "state_dict"
    ref_items, cand_items = list(ref_state.values()), list(cand_state.values())
    if len(ref_items) == len(cand_items) and all(
        r.shape == c.shape and r.dtype == c.dtype for r, c in zip(ref_items, cand_items, strict=True)
    ):
        with torch.no_grad():
            for r, c in zip(ref_items, cand_items, strict=True):
                c.copy_(r)
        return "positional"
    raise ValueError(
        f"ModelNew's parameters/buffers ({len(cand_items)}) do not match Model's ({len(ref_items)}): "
        "weights cannot be shared"
    )


# --- inputs -------------------------------------------------------------------------------------------------
# Each set redraws the task's own get_inputs() under a new seed, then reshapes the value distribution of
# floating inputs without moving them across zero (tasks may need positive inputs: log, sqrt, probabilities).
DISTRIBUTIONS: tuple[tuple[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]], ...] = (
    ("as_defined", lambda t, g: t),
    ("jittered", lambda t, g: t * (torch.rand(t.shape, generator=g) + 0.5).to(t.dtype)),
    ("shrunk", lambda t, g: t * 0.25),
    ("stretched", lambda t, g: t * 3.0),
)


def make_inputs(get_inputs: Callable[[], list[Any]], seed: int, distribution: int, device: str) -> list[Any]:
    torch.manual_seed(seed)
    values = list(get_inputs())
    generator = torch.Generator().manual_seed(seed + 7919)
    transform = DISTRIBUTIONS[distribution % len(DISTRIBUTIONS)][1]
    out = []
    for value in values:
        if isinstance(value, torch.Tensor):
            if value.is_floating_point():
                value = transform(value, generator)
            value = value.to(device)
        out.append(value)
    return out


def clone_inputs(values: Sequence[Any]) -> list[Any]:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def refill_inputs(buffers: Sequence[Any], fresh: Sequence[Any]) -> None:
    """Write `fresh` data into the existing tensors (same pointers: defeats caches keyed on data_ptr)."""
    for buffer, value in zip(buffers, fresh, strict=True):
        if isinstance(buffer, torch.Tensor):
            buffer.copy_(value)


def inputs_unchanged(before: Sequence[Any], after: Sequence[Any]) -> bool:
    for b, a in zip(before, after, strict=True):
        if isinstance(b, torch.Tensor) and not torch.equal(b.nan_to_num(), a.nan_to_num()):
            return False
    return True


# --- poisoned memory ----------------------------------------------------------------------------------------
def _poisoned(nbytes: int, device: str) -> torch.Tensor:
    block = torch.empty(max(1, (nbytes + 1) // 2), dtype=torch.int16, device=device)
    return block.fill_(POISON_16)


def poison_free_memory(device: str, output_bytes: Sequence[int]) -> None:
    """Fill the memory the next allocations will get with the poison pattern, then free it.

    The allocator hands out the best-fitting free block, so one poisoned block is not enough: freed results
    of the same size (the reference's, earlier calls') would be picked first. Many blocks of each expected
    output size are taken (exhausting the free ones of that size) and poisoned, plus, on CUDA, one large block
    after emptying the cache, so every block the candidate can get next holds the pattern.
    """
    copies = _POISON_COPIES_CUDA if device.startswith("cuda") else _POISON_COPIES_CPU
    sizes = [n for n in output_bytes if n > 0]
    budget = max(1, _POISON_MAX_BYTES // max(1, sum(sizes) or 1))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        pool = _poisoned(_POISON_POOL_BYTES, device)
        blocks = [_poisoned(n, device) for n in sizes for _ in range(min(copies, budget))]
        torch.cuda.synchronize()
        del pool, blocks
    else:
        blocks = [_poisoned(n, device) for n in sizes for _ in range(min(copies, budget))]
        del blocks


STALE_SHARE = 0.01  # an output with more of its words poisoned than this returned uninitialised memory
CHANCE_SHARE = 0.001  # far above the ~1/65,536 share a computed tensor holds by chance


def poison_fraction(tensor: torch.Tensor) -> float:
    """Share of the tensor's 16-bit words that still hold a poison pattern (ours, or the CPU heap's)."""
    if not tensor.is_floating_point() or tensor.element_size() < 2 or tensor.numel() == 0:
        return 0.0
    words = tensor.detach().contiguous().view(torch.int16)
    return float(((words == POISON_16) | (words == HEAP_POISON_16)).float().mean())


# --- outputs ------------------------------------------------------------------------------------------------
def flatten_outputs(value: Any) -> tuple[str, list[torch.Tensor]]:
    """(structure, tensors): an exact torch.Tensor or a flat tuple/list of them; else OutputTypeError."""
    if isinstance(value, torch.Tensor):
        items, kind = [value], "tensor"
    elif isinstance(value, (tuple, list)) and value:
        items, kind = list(value), type(value).__name__
    else:
        raise OutputTypeError(f"forward returned {type(value).__name__}, not a tensor or a tuple of tensors")
    for item in items:
        if not isinstance(item, torch.Tensor):
            raise OutputTypeError(f"forward returned a {type(item).__name__} among its outputs")
    return kind, items


def exact_tensor_types(tensors: Sequence[torch.Tensor]) -> bool:
    """True when every output is a plain torch.Tensor (a subclass can compute lazily or lie about values)."""
    return all(type(t) is torch.Tensor or type(t) is nn.Parameter for t in tensors)


def _storage_span(t: torch.Tensor) -> tuple[int, int] | None:
    if t.numel() == 0:
        return None
    start = t.untyped_storage().data_ptr()
    return start, start + t.untyped_storage().nbytes()


def aliases(outputs: Sequence[torch.Tensor], others: Sequence[torch.Tensor]) -> bool:
    """True when an output shares memory with any of `others` (inputs, parameters, buffers)."""
    spans = [s for s in (_storage_span(t) for t in others) if s is not None]
    for out in outputs:
        span = _storage_span(out)
        if span is not None and any(span[0] < end and start < span[1] for start, end in spans):
            return True
    return False


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (0.0, 0.0))


def compare_tensor(
    expected: torch.Tensor, actual: torch.Tensor, tol: tuple[float, float] | None = None
) -> Comparison:
    """|a - e| <= atol + rtol * |e| with atol scaled to max |e|; NaN allowed only where `expected` is NaN."""
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return Comparison(
            False,
            message=f"expected {tuple(expected.shape)} {expected.dtype}, got "
            f"{tuple(actual.shape)} {actual.dtype}",
        )
    if expected.device != actual.device:
        return Comparison(False, message=f"expected a tensor on {expected.device}, got {actual.device}")
    e, a = expected.detach().double(), actual.detach().double()
    if not expected.is_floating_point():
        equal = bool(torch.equal(e, a))
        return Comparison(equal, message="" if equal else "integer outputs differ")
    if e.numel() == 0:
        return Comparison(True)
    rtol, atol_fraction = tol or tolerance(expected.dtype)
    e_nan, a_nan = e.isnan(), a.isnan()
    if bool((a_nan & ~e_nan).any()):
        return Comparison(
            False, math.inf, math.inf, f"{int((a_nan & ~e_nan).sum())} NaN where the reference has none"
        )
    if bool((e_nan & ~a_nan).any()):
        return Comparison(False, math.inf, math.inf, "finite values where the reference has NaN")
    finite = e.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
    scale = float(finite.abs().max())
    atol = max(atol_fraction * scale, _MIN_ATOL)
    same_inf = (e == a) & e.isinf()
    diff = (e - a).abs().masked_fill(e_nan | same_inf, 0.0).nan_to_num(nan=math.inf)
    bad = diff > atol + rtol * finite.abs()
    max_abs = float(diff.max())
    max_rel = float((diff / finite.abs().clamp_min(atol)).max())
    if bool(bad.any()):
        return Comparison(
            False,
            max_abs,
            max_rel,
            f"{int(bad.sum())}/{bad.numel()} elements off (max abs {max_abs:.3g}, "
            f"scale {scale:.3g}, rtol {rtol:g})",
        )
    return Comparison(True, max_abs, max_rel)


def compare_outputs(
    expected: Sequence[torch.Tensor], actual: Sequence[torch.Tensor], tol: tuple[float, float] | None = None
) -> Comparison:
    if len(expected) != len(actual):
        return Comparison(False, message=f"expected {len(expected)} outputs, got {len(actual)}")
    worst = Comparison(True)
    for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
        one = compare_tensor(e, a, tol)
        worst.max_abs_error = max(worst.max_abs_error, one.max_abs_error)
        worst.max_rel_error = max(worst.max_rel_error, one.max_rel_error)
        if not one.ok:
            return Comparison(
                False, worst.max_abs_error, worst.max_rel_error, f"output {index}: {one.message}"
            )
    return worst


def identical(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor]) -> bool:
    """Bitwise-equal outputs (NaN equal to NaN): a constant output repeats exactly across input sets."""
    return len(first) == len(second) and all(
        a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.nan_to_num(), b.nan_to_num())
        for a, b in zip(first, second, strict=True)
    )


def is_uniform(tensor: torch.Tensor) -> bool:
    """Every element the same value (all zeros, a filled constant): no input can have shaped it."""
    if tensor.numel() < 2:
        return False
    flat = tensor.detach().reshape(-1)
    return bool(torch.equal(flat.nan_to_num(), flat[:1].expand_as(flat).nan_to_num()))
