"""The `triton-launch` space: block sizes, num_warps and num_stages of each Triton kernel in an exported pair.

An exported pair (synth_modules/export) launches every kernel directly, `kernel[grid](*args, XBLOCK=...,
num_warps=..., num_stages=...)`, with the configuration Inductor's autotuner picked; `capture_info.launches`
records it with the kernel's grid type. A config sets each kernel's launch keywords; rendering rewrites those
launch lines and recomputes their grids with the exporter's own `launch_grid`. Every variant is re-verified
numerically by the evaluator (a block size that reads past an unmasked edge shows up as a mismatch or crash).

Values are powers of two around the captured choice (first in each list, so the default config is the pair as
exported). The validity predicate keeps blocks within Triton's limits, keeps blocks of kernels whose masks
Inductor elided at or below the captured size (so they still divide the numel), and keeps grids launchable.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from kernel_search.spaces.base import SpaceUnavailable, TaskSpace
from kernel_search.tuning.search_space import Config

_BLOCK_KEYS = ("XBLOCK", "YBLOCK", "ZBLOCK", "R0_BLOCK", "R1_BLOCK")
_MAX_BLOCK_ELEMENTS = 1 << 17  # elements per program (Triton refuses tensors above 2**20; stay well below)
_MAX_GRID_YZ = 65535
_WARPS = [1, 2, 4, 8, 16]
_STAGES = [1, 2, 3, 4]


def _powers_around(value: int, low: int = 1, high: int = 4096, spread: int = 4) -> list[int]:
    values = [value]
    power = 1
    while power <= high:
        if low <= power and value // spread <= power <= value * spread and power != value:
            values.append(power)
        power *= 2
    return values


@dataclass
class _Kernel:
    name: str
    grid_type: str
    kwargs: dict[str, int]
    num_warps: int
    num_stages: int
    numels: dict[str, int]
    masked: dict[str, bool]  # axis prefix -> the kernel masks that axis
    inline_rblock: int  # R0_BLOCK fixed inside a persistent reduction (1 if none)


def _kernel_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any("jit" in ast.unparse(d) for d in node.decorator_list):
            found[node.name] = node
    return found


def _launches(tree: ast.Module) -> list[ast.Call]:
    """Direct launches `name[grid](..., num_warps=...)` anywhere in the module."""
    calls = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Subscript)
            and isinstance(node.func.value, ast.Name)
            and any(k.arg == "num_warps" for k in node.keywords)
        ):
            calls.append(node)
    return calls


def _runtime_params(function: ast.FunctionDef) -> list[str]:
    return [
        a.arg for a in function.args.args if not (a.annotation and "constexpr" in ast.unparse(a.annotation))
    ]


class TritonLaunchSpace(TaskSpace):
    name = "triton-launch"

    def __init__(self, pair: dict[str, Any]):
        self.pair = pair
        self.entry_point = str(pair.get("entry_point") or "")
        self.source = str(pair.get("triton_code") or "")
        try:
            info = (
                json.loads(pair["capture_info"])
                if isinstance(pair.get("capture_info"), str)
                else pair["capture_info"]
            )
            self.tree = ast.parse(self.source)
        except (KeyError, TypeError, ValueError, SyntaxError) as error:
            raise SpaceUnavailable(
                f"pair {pair.get('id')}: no parsable triton_code / capture_info ({error})"
            ) from None
        self.kernels = self._read_kernels(info.get("launches") or {})
        if not self.kernels:
            raise SpaceUnavailable(f"pair {pair.get('id')}: no Triton kernel launches to tune")

    def _read_kernels(self, launches: dict[str, Any]) -> dict[str, _Kernel]:
        from synth_modules.export.clean import SUPPORTED_GRIDS

        functions = _kernel_functions(self.tree)
        kernels: dict[str, _Kernel] = {}
        for call in _launches(self.tree):
            name = call.func.value.id  # type: ignore[attr-defined]
            launch, function = launches.get(name), functions.get(name)
            if launch is None or function is None or launch.get("grid_type") not in SUPPORTED_GRIDS:
                continue
            params = [p for p in _runtime_params(function) if p not in (launch.get("constants") or {})]
            numels = {
                p: a.value
                for p, a in zip(params, call.args, strict=False)
                if p.endswith("numel") and isinstance(a, ast.Constant) and isinstance(a.value, int)
            }
            body = ast.unparse(function)
            masked = {axis: f"{axis}index < {axis}numel" in body for axis in ("x", "y", "z", "r0_", "r1_")}
            inline = 1
            for stmt in function.body:
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and ast.unparse(stmt.target) == "R0_BLOCK"
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, int)
                ):
                    inline = stmt.value.value
            kernels[name] = _Kernel(
                name=name,
                grid_type=str(launch["grid_type"]),
                kwargs={k: int(v) for k, v in (launch.get("kwargs") or {}).items()},
                num_warps=int(launch.get("num_warps", 4)),
                num_stages=int(launch.get("num_stages", 1)),
                numels=numels,
                masked=masked,
                inline_rblock=inline,
            )
        return kernels

    # ----- the space -------------------------------------------------------------------------------------------
    def parameters(self) -> dict[str, list[Any]]:
        params: dict[str, list[Any]] = {}
        for kernel in self.kernels.values():
            for key, value in sorted(kernel.kwargs.items()):
                if key in _BLOCK_KEYS:
                    params[f"{kernel.name}.{key}"] = _powers_around(value)
            params[f"{kernel.name}.num_warps"] = [kernel.num_warps] + [
                w for w in _WARPS if w != kernel.num_warps
            ]
            params[f"{kernel.name}.num_stages"] = [kernel.num_stages] + [
                s for s in _STAGES if s != kernel.num_stages
            ]
        return params

    def launch_of(self, kernel: _Kernel, config: Config) -> tuple[dict[str, int], int, int]:
        kwargs = {k: int(config.get(f"{kernel.name}.{k}", v)) for k, v in kernel.kwargs.items()}
        return kwargs, int(config[f"{kernel.name}.num_warps"]), int(config[f"{kernel.name}.num_stages"])

    def is_valid(self, config: Config) -> bool:
        from synth_modules.export.clean import launch_grid

        for kernel in self.kernels.values():
            kwargs, _, _ = self.launch_of(kernel, config)
            elements = kernel.inline_rblock
            for key, value in kwargs.items():
                if key not in _BLOCK_KEYS:
                    continue
                elements *= value
                axis = key[: -len("BLOCK")].lower()
                axis = axis if axis in {"x", "y", "z"} else axis.replace("_", "") + "_"
                if not kernel.masked.get(axis, True) and value > kernel.kwargs[key]:
                    return False  # an elided mask: only block sizes that still divide the numel
            if elements > _MAX_BLOCK_ELEMENTS:
                return False
            try:
                grid = launch_grid(kernel.grid_type, kernel.numels, kwargs)
            except Exception:
                return False
            if any(g > _MAX_GRID_YZ for g in grid[1:]) or any(g < 1 for g in grid):
                return False
        return True

    def render(self, config: Config) -> str:
        from synth_modules.export.clean import launch_grid

        tree = ast.parse(self.source)
        for call in _launches(tree):
            kernel = self.kernels.get(call.func.value.id)  # type: ignore[attr-defined]
            if kernel is None:
                continue
            kwargs, warps, stages = self.launch_of(kernel, config)
            call.func.slice = ast.parse(
                repr(launch_grid(kernel.grid_type, kernel.numels, kwargs)), mode="eval"
            ).body
            for keyword in call.keywords:
                if keyword.arg in kwargs:
                    keyword.value = ast.Constant(kwargs[keyword.arg])
                elif keyword.arg == "num_warps":
                    keyword.value = ast.Constant(warps)
                elif keyword.arg == "num_stages":
                    keyword.value = ast.Constant(stages)
        from synth_modules.program import rename_class

        return rename_class(ast.unparse(tree) + "\n", f"{self.entry_point}New", "ModelNew")
