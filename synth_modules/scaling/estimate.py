"""Cost estimate of one program without running its arithmetic: FLOPs, bytes moved, memory, operator calls.

The program is built and run on PyTorch's `meta` device (shapes and dtypes only, no data), so estimating a
program at gigabyte sizes takes milliseconds and allocates nothing. A program that cannot run on `meta` (an op
without a meta kernel, a data-dependent shape) can be estimated on a real device instead. This executes the
program: call it only inside an isolated worker (export-seeds' GPU workers do).
"""

from __future__ import annotations

import types
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from synth_modules.program import split_init_inputs
from synth_modules.sandbox.loading import execute_as_module

_FREE_OPS = {"view", "_unsafe_view", "expand", "permute", "transpose", "t", "unsqueeze", "squeeze", "alias"}


@dataclass
class Estimate:
    flops: int
    bytes_moved: int  # every operator's tensor inputs + outputs (unfused eager traffic)
    min_bytes: int  # program inputs + parameters + outputs (the traffic of a perfectly fused kernel)
    memory_bytes: int  # inputs + parameters + every operator output (never freed: an upper bound)
    op_calls: int  # operators that launch work (views excluded)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def seconds(self, peak_flops: float, peak_bytes_per_s: float) -> float:
        """Roofline time of the unfused program."""
        return max(self.flops / peak_flops, self.bytes_moved / peak_bytes_per_s)


def _nbytes(value: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tree_leaves(value) if isinstance(t, torch.Tensor))


class _Traffic(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.bytes_moved = 0
        self.output_bytes = 0
        self.op_calls = 0

    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name not in _FREE_OPS:
            produced = _nbytes(out)
            self.bytes_moved += _nbytes(args) + _nbytes(kwargs) + produced
            self.output_bytes += produced
            self.op_calls += 1
        return out


def build(module: types.ModuleType, entry_point: str, device: str) -> tuple[torch.nn.Module, list[Any]]:
    """The model (seed 0) and inputs of a loaded program, created directly on `device`."""
    with torch.device(device):
        torch.manual_seed(0)
        args, kwargs = split_init_inputs(module.get_init_inputs())
        model = getattr(module, entry_point)(*args, **kwargs).eval()
        inputs = list(module.get_inputs())
    inputs = [t.to(device) if isinstance(t, torch.Tensor) else t for t in inputs]
    return model.to(device), inputs


def estimate_module(module: types.ModuleType, entry_point: str, device: str = "meta") -> Estimate:
    model, inputs = build(module, entry_point, device)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    params += sum(b.numel() * b.element_size() for b in model.buffers())
    traffic = _Traffic()
    with torch.no_grad(), FlopCounterMode(display=False) as flops, traffic:
        out = model(*inputs)
    return Estimate(
        flops=int(flops.get_total_flops()),
        bytes_moved=traffic.bytes_moved,
        min_bytes=_nbytes(inputs) + params + _nbytes(out),
        memory_bytes=_nbytes(inputs) + params + traffic.output_bytes,
        op_calls=traffic.op_calls,
    )


def estimate_source(source: str, entry_point: str, device: str = "meta") -> Estimate:
    return estimate_module(execute_as_module(source, "synth_scaled.py", "synth_scaled"), entry_point, device)
