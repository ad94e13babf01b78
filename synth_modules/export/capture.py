"""Capture what Inductor generates for one module on CUDA: output code, launch configs, graph input order.

The capture compiles with a backend that wraps Inductor's `compile_fx`, so it sees every graph Dynamo produces
(more than one means a graph break) and the real tensors each graph takes, in the order the generated
`call(args)` expects them. Each such tensor is named back to the module (`param:`/`buffer:` + dotted name) or
the forward inputs (`input:<i>`). Output code comes from `torch._inductor.utils.run_and_get_code`; caches must
be off (the worker sets that up) or a cache hit would skip code generation. Launch configurations are read from
the kernels Inductor loaded, after their first run has autotuned them to one config each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from synth_modules.export.clean import SUPPORTED_GRIDS, KernelLaunch
from synth_modules.export.errors import ExportError
from synth_modules.types import Category


@dataclass
class Capture:
    raw_code: str
    launches: dict[str, KernelLaunch]
    call_args: list[str]  # tensor references, in call(args) order
    example_args: list[torch.Tensor] = field(repr=False, default_factory=list)
    seconds: float = 0.0


def _tensor_refs(model: nn.Module, inputs: list[Any]) -> dict[str, torch.Tensor]:
    """Every tensor a graph may take, by reference name (inputs first: they win over aliased parameters)."""
    refs: dict[str, torch.Tensor] = {}
    for index, value in enumerate(inputs):
        if isinstance(value, torch.Tensor):
            refs[f"input:{index}"] = value
    for name, param in model.named_parameters(remove_duplicate=False):
        refs[f"param:{name}"] = param
    for name, buffer in model.named_buffers(remove_duplicate=False):
        refs[f"buffer:{name}"] = buffer
    return refs


def _reference(tensor: torch.Tensor, refs: dict[str, torch.Tensor]) -> str:
    """Name a graph input by identity, else by storage (the same memory seen through another Python object)."""
    for ref, other in refs.items():
        if other is tensor:
            return ref
    for ref, other in refs.items():
        if (
            other.data_ptr() == tensor.data_ptr()
            and other.shape == tensor.shape
            and other.stride() == tensor.stride()
            and other.dtype == tensor.dtype
        ):
            return ref
    raise ExportError(
        Category.UNSUPPORTED, "a graph input is neither a parameter, a buffer nor a forward input"
    )


def _launch_of(kernel: Any) -> KernelLaunch:
    launchers = getattr(kernel, "launchers", None) or []
    if len(launchers) != 1:
        raise ExportError(
            Category.CAPTURE_FAILURE, f"kernel has {len(launchers)} launchers after its first run"
        )
    config = launchers[0].config
    meta = getattr(kernel, "inductor_meta", {}) or {}
    grid_type = str(meta.get("grid_type", "Grid1D"))
    if grid_type not in SUPPORTED_GRIDS:
        raise ExportError(Category.UNSUPPORTED, f"grid type {grid_type}")
    if meta.get("extra_launcher_args"):
        raise ExportError(Category.UNSUPPORTED, "kernel needs extra launcher arguments (workspace)")
    constexprs = set(config.kwargs)
    constants = {
        str(k): v
        for k, v in ((getattr(kernel, "triton_meta", {}) or {}).get("constants", {}) or {}).items()
        if isinstance(k, str) and k not in constexprs and isinstance(v, (int, float, bool))
    }
    return KernelLaunch(
        grid_type=grid_type,
        kwargs={str(k): int(v) for k, v in config.kwargs.items()},
        num_warps=int(config.num_warps),
        num_stages=int(config.num_stages),
        constants=constants,
    )


def _read_launches(raw_code: str, example_args: list[torch.Tensor]) -> dict[str, KernelLaunch]:
    """Launch configs of the kernels in `raw_code`, taken from the module Inductor loaded for it.

    The module is found by its file in Inductor's code cache (loaded again only if it is not there); if its
    kernels have not settled on one config yet, running `call` once on copies of the example args autotunes them.
    """
    from torch._inductor.codecache import PyCodeCache

    key, path = PyCodeCache.write(raw_code)
    loaded = [m for m in getattr(PyCodeCache, "modules", []) if getattr(m, "__file__", None) == path]
    module = loaded[-1] if loaded else PyCodeCache.load_by_key_path(key, path)
    kernels = {
        name: obj for name, obj in vars(module).items() if hasattr(obj, "launchers") and hasattr(obj, "fn")
    }
    if any(len(k.launchers or []) != 1 for k in kernels.values()):
        with torch.no_grad():
            module.call([a.clone() for a in example_args])
    return {name: _launch_of(kernel) for name, kernel in kernels.items()}


def capture_inductor(model: nn.Module, inputs: list[Any]) -> Capture:
    """Compile `model` with Inductor on the inputs' device and capture one graph's generated code."""
    from torch._inductor.compile_fx import compile_fx
    from torch._inductor.utils import run_and_get_code

    graphs: list[list[torch.Tensor]] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Any:
        graphs.append(list(example_inputs))
        return compile_fx(gm, example_inputs)

    from torch._dynamo.utils import counters

    counters["graph_break"].clear()  # Dynamo tallies break reasons here, including code it left to eager
    started = time.perf_counter()
    compiled = torch.compile(model, backend=backend, fullgraph=False)
    try:
        # allow_rnn: Dynamo otherwise runs RNN/LSTM/GRU layers eagerly (a graph break, so no pair); with it they
        # decompose into matmuls and pointwise steps that Inductor turns into kernels.
        with torch.no_grad(), torch._dynamo.config.patch(allow_rnn=True):
            _, codes = run_and_get_code(compiled, *inputs)
    except ExportError:
        raise
    except Exception as error:  # Inductor/Triton failures of any kind end this program only
        raise ExportError(Category.CAPTURE_FAILURE, f"{type(error).__name__}: {error}"[:2000]) from None
    breaks = sorted(counters["graph_break"], key=lambda reason: -counters["graph_break"][reason])
    if len(graphs) > 1 or breaks:
        reason = f": {str(breaks[0]).splitlines()[0][:300]}" if breaks else ""
        raise ExportError(Category.GRAPH_BREAK, f"Dynamo split forward into {len(graphs)} graph(s){reason}")
    if not graphs:
        raise ExportError(Category.UNSUPPORTED, "Dynamo captured no graph (forward ran eagerly)")
    if len(codes) != 1:
        raise ExportError(Category.CAPTURE_FAILURE, f"expected one output module, captured {len(codes)}")
    example_args = graphs[0]
    refs = _tensor_refs(model, inputs)
    call_args = [_reference(t, refs) for t in example_args]
    launches = _read_launches(codes[0], example_args)
    return Capture(
        raw_code=codes[0],
        launches=launches,
        call_args=call_args,
        example_args=example_args,
        seconds=time.perf_counter() - started,
    )
