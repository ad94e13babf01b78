"""Did the candidate launch work of its own? The profiler's kernel names against the reference's.

On CUDA the device kernels each forward launched are compared: a candidate whose kernels are all among the
reference's (the same aten ops, or none at all) is a `fallback`. On CPU the aten operators are compared the
same way, minus allocation and view bookkeeping; a CPU candidate whose work is invisible to the profiler
(an inline C++ extension, Triton's interpreter) records no operators and is not called a fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

_CPU_BOOKKEEPING = frozenset(
    {
        "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::view", "aten::reshape", "aten::_unsafe_view",
        "aten::as_strided", "aten::contiguous", "aten::detach", "aten::detach_", "aten::alias", "aten::t",
        "aten::transpose", "aten::permute", "aten::expand", "aten::unsqueeze", "aten::squeeze", "aten::select",
        "aten::slice", "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg", "aten::to", "aten::_to_copy",
        "aten::copy_", "aten::clone", "aten::zero_", "aten::fill_", "aten::zeros", "aten::result_type",
        "aten::item", "aten::_local_scalar_dense", "aten::size", "aten::stride", "aten::numel", "aten::dim",
    }
)  # fmt: skip
_CUDA_BOOKKEEPING_PREFIXES = ("Memcpy", "Memset", "cudaMemcpy", "cudaMemset")


@dataclass
class KernelProfile:
    names: set[str] = field(default_factory=set)
    available: bool = True
    error: str = ""


def profile_kernels(fn: Callable[[], object], device: str) -> KernelProfile:
    """Names of the kernels (CUDA) or compute operators (CPU) one call of `fn` runs."""
    cuda = device.startswith("cuda")
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    try:
        with torch.profiler.profile(activities=activities) as prof:
            fn()
            if cuda:
                torch.cuda.synchronize()
        events = list(prof.events())
    except Exception as error:  # CUPTI unavailable: report it, never guess
        return KernelProfile(available=False, error=f"{type(error).__name__}: {error}"[:300])
    if cuda:
        device_type = torch.autograd.DeviceType.CUDA
        names = {
            e.name
            for e in events
            if e.device_type == device_type and not e.name.startswith(_CUDA_BOOKKEEPING_PREFIXES)
        }
    else:
        names = {e.name for e in events if e.name.startswith("aten::") and e.name not in _CPU_BOOKKEEPING}
    return KernelProfile(names=names)


def fallback_reason(candidate: KernelProfile, reference: KernelProfile, device: str) -> str | None:
    """Why the candidate counts as the reference's own work, or None when it launched kernels of its own."""
    if not candidate.available or not reference.available:
        return None
    own = candidate.names - reference.names
    if own:
        return None
    if not candidate.names:
        if device.startswith("cuda"):
            return "the candidate launched no kernels of its own (none at all)"
        return None
    shown = ", ".join(sorted(candidate.names)[:4])
    return f"every kernel the candidate launched is one the reference launches too ({shown})"
