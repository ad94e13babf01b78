"""One program -> one verified pair: capture on CUDA, clean, wrap, map outputs, verify.

Runs inside a GPU worker process; every failure is raised as an ExportError with its category so the worker
can report it and carry on with the next program.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from synth_modules.export.capture import capture_inductor
from synth_modules.export.clean import CleanedCode, clean_output_code
from synth_modules.export.errors import ExportError
from synth_modules.export.verify import (
    CheckSettings,
    build_original,
    flatten_outputs,
    fresh_inputs,
    verify_pair,
)
from synth_modules.export.wrap import CallSpec, new_class_name, wrap_pair
from synth_modules.sandbox.compare import compare
from synth_modules.sandbox.loading import import_file
from synth_modules.types import Category

__all__ = ["CheckSettings", "PairResult", "make_pair", "match_outputs"]


@dataclass
class PairResult:
    """What the worker sends back for a verified pair (the parent adds the program's own columns)."""

    original_triton_code: str
    triton_code: str
    kernel_count: int
    capture_info: dict[str, Any]
    max_abs_error: float
    max_rel_error: float
    timings: dict[str, float] = field(default_factory=dict)


def _clone(values: Sequence[Any]) -> list[Any]:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def _named_tensors(model: nn.Module, inputs: Sequence[Any]) -> dict[str, torch.Tensor]:
    named = {f"input:{i}": v for i, v in enumerate(inputs) if isinstance(v, torch.Tensor)}
    named.update({f"param:{k}": v for k, v in model.named_parameters(remove_duplicate=False)})
    named.update({f"buffer:{k}": v for k, v in model.named_buffers(remove_duplicate=False)})
    return named


def match_outputs(
    expected: list[torch.Tensor],
    produced: Sequence[torch.Tensor],
    named: dict[str, torch.Tensor],
    check: CheckSettings,
) -> list[str]:
    """Which of call's results (or which input/parameter passed through) is each of the module's outputs.

    Usually output k is result k; Dynamo may also return inputs untouched or reorder, so each output is matched
    by identity, then by value among the unused results. An output that only matches by shape keeps its
    position and is left to verification to judge.
    """
    items: list[str] = []
    used: set[int] = set()
    for k, tensor in enumerate(expected):
        passthrough = next((ref for ref, t in named.items() if t is tensor), None)
        if passthrough is not None:
            items.append(passthrough)
            continue
        order = [k, *(j for j in range(len(produced)) if j != k)]
        choice = next(
            (
                j
                for j in order
                if j < len(produced)
                and j not in used
                and compare([tensor], [produced[j]], check.tolerance).ok
            ),
            None,
        )
        if choice is None and k < len(produced) and k not in used and produced[k].shape == tensor.shape:
            choice = k
        if choice is None:
            raise ExportError(Category.UNSUPPORTED, f"output {k} is not among the compiled graph's results")
        used.add(choice)
        items.append(f"call:{choice}")
    return items


def _check_no_state_mutation(model: nn.Module, inputs: list[Any]) -> Any:
    """Run eager once; a forward that writes its parameters or buffers cannot become a stateless pair."""
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    eager_inputs = _clone(inputs)
    with torch.no_grad():
        output = model(*eager_inputs)
    for key, value in model.state_dict().items():
        if not torch.equal(before[key], value):
            raise ExportError(Category.UNSUPPORTED, f"forward mutates {key} (buffer or parameter state)")
    return output, eager_inputs


def _load_pair(code: str, path: Path) -> ModuleType:
    path.write_text(code, encoding="utf-8")
    try:
        return import_file(path, prefix="synth_pair")
    except Exception as error:
        raise ExportError(Category.CAPTURE_FAILURE, f"wrapped code does not import: {error}") from None


def make_pair(
    program_path: Path,
    entry_point: str,
    device: str,
    workdir: Path,
    check: CheckSettings | None = None,
) -> PairResult:
    """Capture, clean, wrap and verify one program on `device` (a CUDA device)."""
    check = check or CheckSettings()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    source = program_path.read_text(encoding="utf-8")
    try:
        program = import_file(program_path, prefix="synth_program")
        model = build_original(program, entry_point, device)
        inputs = fresh_inputs(program, 0, device)
        eager_output, eager_inputs = _check_no_state_mutation(model, inputs)
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(
            Category.CAPTURE_FAILURE, f"program does not run on {device}: {error}"[:2000]
        ) from None
    output_kind, expected = flatten_outputs(eager_output)
    timings["eager"] = time.perf_counter() - started

    capture = capture_inductor(model, inputs)
    timings["capture"] = capture.seconds
    mark = time.perf_counter()
    cleaned: CleanedCode = clean_output_code(capture.raw_code, capture.launches)
    spec = CallSpec(
        args=capture.call_args,
        output_kind=output_kind,
        outputs=[f"call:{i}" for i in range(len(expected))],
        n_inputs=len(inputs),
    )
    if cleaned.call_arg_count != len(spec.args):
        raise ExportError(
            Category.CAPTURE_FAILURE,
            f"call() unpacks {cleaned.call_arg_count} args, graph took {len(spec.args)}",
        )
    pair_path = workdir / f"{entry_point}_pair.py"
    try:
        triton_code = wrap_pair(source, entry_point, cleaned, spec)
        module = _load_pair(triton_code, pair_path)
        named = _named_tensors(model, inputs)
        call_inputs = [named[ref].clone() if ref.startswith("input:") else named[ref] for ref in spec.args]
        with torch.no_grad():
            produced = module.call(call_inputs)
        mapped = match_outputs(expected, produced, _named_tensors(model, eager_inputs), check)
        if mapped != spec.outputs:
            spec = CallSpec(args=spec.args, output_kind=output_kind, outputs=mapped, n_inputs=spec.n_inputs)
            triton_code = wrap_pair(source, entry_point, cleaned, spec)
            module = _load_pair(triton_code, pair_path)
        timings["clean_wrap"] = time.perf_counter() - mark
        mark = time.perf_counter()
        new_cls = getattr(module, new_class_name(entry_point))
        comparison = verify_pair(program, entry_point, new_cls, device, check)
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(Category.CAPTURE_FAILURE, f"{type(error).__name__}: {error}"[:2000]) from None
    finally:
        pair_path.unlink(missing_ok=True)
    timings["verify"] = time.perf_counter() - mark
    if not comparison.ok:
        raise ExportError(Category.MISMATCH, comparison.reason)
    capture_info = {
        "call": spec.to_dict(),
        "launches": {name: launch.to_dict() for name, launch in capture.launches.items()},
        **check.to_dict(),
    }
    json.dumps(capture_info)  # must survive the trip to the parent and into the dataset
    return PairResult(
        original_triton_code=capture.raw_code,
        triton_code=triton_code,
        kernel_count=len(cleaned.kernel_names),
        capture_info=capture_info,
        max_abs_error=comparison.max_abs_error,
        max_rel_error=comparison.max_rel_error,
        timings=timings,
    )
