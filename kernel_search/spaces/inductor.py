"""The `inductor` space: torch.compile's mode and Inductor options for one task.

A candidate is the task's own source with its class renamed (candidates may not use the task's `Model`) plus a
`ModelNew` subclass whose forward runs through `torch.compile(..., options=...)`. The mode is expanded into the options it stands for
(`torch._inductor.list_mode_options`) before rendering, so a mode and the same options spelled out render the
same source and are measured once. The validity predicate refuses configs whose explicit options contradict
their mode (e.g. mode=max-autotune with max_autotune=False), and gemm backends without autotuning (unused).
"""

from __future__ import annotations

from typing import Any

from kernel_search.spaces.base import TaskSpace
from kernel_search.tuning.search_space import Config

# Each list starts with Inductor's default.
MODES = ["default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune"]
# What each mode turns on (torch._inductor.list_mode_options, torch 2.4-2.13); kept here so rendering and the
# validity predicate need no torch import.
MODE_OPTIONS: dict[str, dict[str, bool]] = {
    "default": {},
    "reduce-overhead": {"triton.cudagraphs": True},
    "max-autotune-no-cudagraphs": {"max_autotune": True, "coordinate_descent_tuning": True},
    "max-autotune": {"max_autotune": True, "coordinate_descent_tuning": True, "triton.cudagraphs": True},
}
FULL_OPTIONS: dict[str, list[Any]] = {
    "max_autotune": [False, True],
    "coordinate_descent_tuning": [False, True],
    "triton.cudagraphs": [False, True],
    "epilogue_fusion": [True, False],
    "aggressive_fusion": [False, True],
    "shape_padding": [True, False],
    "triton.persistent_reductions": [True, False],
    "max_fusion_size": [64, 16, 256],
    "max_autotune_gemm_backends": ["ATEN,TRITON", "ATEN", "TRITON"],
}
# Small enough to enumerate (for the evaluations-to-95%-of-optimum measurement).
SMALL_OPTIONS: dict[str, list[Any]] = {
    "triton.cudagraphs": [False, True],
    "epilogue_fusion": [True, False],
    "aggressive_fusion": [False, True],
    "triton.persistent_reductions": [True, False],
}
_CUDA_ONLY = {"triton.cudagraphs", "triton.persistent_reductions", "max_autotune_gemm_backends"}

_TEMPLATE = '''{task_source}

# ---- kernel-search inductor candidate ----
_KERNEL_SEARCH_OPTIONS = {options}


class ModelNew(_KernelSearchEager):
    """The task's computation, its forward compiled by Inductor with the searched options."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._compiled_forward = torch.compile(
            super().forward, backend="inductor", fullgraph=False, dynamic=False, options=_KERNEL_SEARCH_OPTIONS
        )

    def forward(self, *inputs):
{forward_body}
'''
_PLAIN_FORWARD = "        return self._compiled_forward(*inputs)"
# CUDA-graph trees reuse their output buffers on the next replay; callers that keep outputs (the evaluator
# does) get "accessing tensor output of CUDAGraphs that has been overwritten". Each call starts a new graph
# step and returns copies, which is what torch's message asks for (the copy is part of the measured time).
_CUDAGRAPH_FORWARD = """\
        torch.compiler.cudagraph_mark_step_begin()
        outputs = self._compiled_forward(*inputs)
        if isinstance(outputs, torch.Tensor):
            return outputs.clone()
        return type(outputs)(o.clone() if isinstance(o, torch.Tensor) else o for o in outputs)"""


def effective_options(config: Config) -> dict[str, Any]:
    """The mode expanded, explicit options on top, Inductor's defaults dropped: what the candidate passes."""
    options: dict[str, Any] = dict(MODE_OPTIONS[config.get("mode", "default")])
    for name, value in config.items():
        if name == "mode":
            continue
        defaults = FULL_OPTIONS.get(name) or SMALL_OPTIONS.get(name)
        if defaults is not None and value == defaults[0] and name not in options:
            continue
        options[name] = value
    return {
        k: options[k]
        for k in sorted(options)
        if not (k in MODE_OPTIONS["max-autotune"] and options[k] is False)
    }


class InductorSpace(TaskSpace):
    name = "inductor"  # "inductor-small" for the enumerable profile (set in __init__)

    def __init__(self, task_source: str, device: str = "cuda", profile: str = "full"):
        if profile not in {"full", "small"}:
            raise ValueError(f"inductor space profile must be 'full' or 'small', got {profile!r}")
        if "class Model" not in task_source:
            raise ValueError("the inductor space needs a KernelBench task source defining class Model")
        from synth_modules.program import rename_class

        self.task_source = rename_class(task_source, "Model", "_KernelSearchEager").rstrip() + "\n"
        self.device = device
        self.profile = profile
        self.name = "inductor" if profile == "full" else "inductor-small"

    def parameters(self) -> dict[str, list[Any]]:
        options = FULL_OPTIONS if self.profile == "full" else SMALL_OPTIONS
        modes = MODES if self.device == "cuda" else ["default", "max-autotune-no-cudagraphs"]
        params: dict[str, list[Any]] = {"mode": modes} if self.profile == "full" else {}
        for name, values in options.items():
            if self.device != "cuda" and name in _CUDA_ONLY:
                continue
            params[name] = list(values)
        return params

    def is_valid(self, config: Config) -> bool:
        implied = MODE_OPTIONS.get(config.get("mode", "default"), {})
        if any(name in config and config[name] != value for name, value in implied.items()):
            return False  # an option contradicting the mode: refused rather than silently overriding it
        autotune = config.get("max_autotune", False) or implied.get("max_autotune", False)
        gemm = config.get("max_autotune_gemm_backends")
        return not (
            gemm is not None and gemm != FULL_OPTIONS["max_autotune_gemm_backends"][0] and not autotune
        )

    def render(self, config: Config) -> str:
        options = effective_options(config)
        body = _CUDAGRAPH_FORWARD if options.get("triton.cudagraphs") else _PLAIN_FORWARD
        return _TEMPLATE.format(task_source=self.task_source, options=repr(options), forward_body=body)
