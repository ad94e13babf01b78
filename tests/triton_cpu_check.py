"""Verify committed GPU pairs on CPU with Triton's interpreter: `python tests/triton_cpu_check.py PAIRS_DIR [N]`.

Run as its own process because TRITON_INTERPRET must be set before Triton is imported. Each pair's triton_code
is retargeted to CPU buffers, its `libdevice` bound to tests/triton_cpu_libdevice.py, and the New module checked
against the PyTorch program with the same verification export-pairs uses on the GPU (randomized weights, fresh
inputs, the comparison rule), on the first N of the default verification seeds (default 1: the interpreter is
slow). Prints one JSON line per pair; a kernel that trips Triton 3.6's interpreter on NumPy >= 2.4
(triton-lang/triton#9171: `range()` over a value assigned inside the kernel) is reported as `"interpreter_bug"`.

`python tests/triton_cpu_check.py PAIRS_DIR --tamper` instead runs wrong New modules built from the fixture
pairs (TAMPERS below: the real Triton kernels, fed or answered wrongly) and prints, per case, whether
verification accepted it (`ok`, must be false) and whether it would have passed with the default weights
(`default_weights_ok`), next to the honest pair's verdict (`honest_ok`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["TRITON_INTERPRET"] = "1"

import torch
from torch import nn
from triton.runtime.errors import InterpreterError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import triton_cpu_libdevice  # noqa: E402

from synth_modules.export.verify import (  # noqa: E402
    DEFAULT_SEEDS,
    CheckSettings,
    build_new,
    build_original,
    compare_outputs,
    fresh_inputs,
    retarget_to_cpu,
    verify_pair,
)
from synth_modules.export.wrap import new_class_name  # noqa: E402
from synth_modules.run.store import read_jsonl  # noqa: E402
from synth_modules.sandbox.loading import import_file  # noqa: E402

_NUMPY_INDEX_BUG = "only 0-dimensional arrays can be converted to Python scalars"


def load_pair(row: dict[str, Any], tmp: Path) -> tuple[Any, type[nn.Module]]:
    """(program module, New class) of one pairs.jsonl row, the New module's kernels running on CPU."""
    program_path = tmp / f"{row['entry_point']}.py"
    program_path.write_text(row["python_code"], encoding="utf-8")
    pair_path = tmp / f"{row['entry_point']}_pair.py"
    pair_path.write_text(retarget_to_cpu(row["triton_code"]), encoding="utf-8")
    pair = import_file(pair_path, prefix="interpret_pair")
    pair.libdevice = triton_cpu_libdevice
    program = import_file(program_path, prefix="interpret_program")
    return program, getattr(pair, new_class_name(row["entry_point"]))


def main(pairs_dir: str, n_seeds: int = 1) -> int:
    torch.set_num_threads(1)
    check = CheckSettings(seeds=DEFAULT_SEEDS[:n_seeds])
    with tempfile.TemporaryDirectory() as tmp:
        for row in read_jsonl(Path(pairs_dir) / "pairs.jsonl"):
            program, new_cls = load_pair(row, Path(tmp))
            try:
                result = verify_pair(program, row["entry_point"], new_cls, "cpu", check)
            except InterpreterError as error:
                if _NUMPY_INDEX_BUG not in str(error):
                    raise
                print(
                    json.dumps({"entry_point": row["entry_point"], "interpreter_bug": str(error)}), flush=True
                )
                continue
            print(json.dumps({"entry_point": row["entry_point"], **result.to_dict()}), flush=True)
    return 0


# --- wrong New modules --------------------------------------------------------------------------------------
def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def _with_values(module: nn.Module, changes: dict[str, torch.Tensor], run: Callable[[], Any]) -> Any:
    """Run the real kernels with some tensors temporarily holding other values (a kernel reading the wrong data)."""
    tensors = _tensors(module)
    saved = {name: tensors[name].detach().clone() for name in changes}
    with torch.no_grad():
        for name, value in changes.items():
            tensors[name].copy_(value)
        try:
            return run()
        finally:
            for name, value in saved.items():
                tensors[name].copy_(value)


def _zeros(module: nn.Module, forward: Callable[[], Any], args: tuple) -> Any:
    out = forward()
    return type(out)(torch.zeros_like(o) for o in out) if isinstance(out, tuple) else torch.zeros_like(out)


def _swap(first: str, second: str) -> Callable[[nn.Module, Callable[[], Any], tuple], Any]:
    def run(module: nn.Module, forward: Callable[[], Any], args: tuple) -> Any:
        tensors = _tensors(module)
        return _with_values(
            module, {first: tensors[second].detach(), second: tensors[first].detach()}, forward
        )

    return run


def _drop(name: str) -> Callable[[nn.Module, Callable[[], Any], tuple], Any]:
    def run(module: nn.Module, forward: Callable[[], Any], args: tuple) -> Any:
        return _with_values(module, {name: torch.zeros_like(_tensors(module)[name])}, forward)

    return run


# case -> (fixture entry point, how the wrong module answers)
TAMPERS: dict[str, tuple[str, Callable[[nn.Module, Callable[[], Any], tuple], Any]]] = {
    "returns_zeros": ("SynthModel_Mul_Softmax_4ff8e85d", _zeros),
    "returns_input": ("SynthModel_Pow_Mean_Rsqrt_Mul_2a2d58a0", lambda m, f, args: args[0].clone()),
    "swaps_batchnorm_weight_and_running_var": (
        "SynthModel_BatchNorm2d_ReLU_AdaptiveAvgPool2d_12082deb",
        _swap("bn.weight", "bn.running_var"),
    ),
    "swaps_groupnorm_weight_and_bias": (
        "SynthModel_Conv2d_GroupNorm_Mish_320110e1",
        _swap("norm.weight", "norm.bias"),
    ),
    "drops_zero_initialised_bias": ("SynthModel_Bmm_Add_Sigmoid_f101cbc6", _drop("bias")),
    "drops_conv_bias": ("SynthModel_Conv2d_GroupNorm_Mish_320110e1", _drop("conv.bias")),
}


def tampered(new_cls: type[nn.Module], answer: Callable[[nn.Module, Callable[[], Any], tuple], Any]) -> type:
    class Tampered(new_cls):  # type: ignore[misc, valid-type]
        def forward(self, *args: Any) -> Any:
            return answer(self, lambda: super(Tampered, self).forward(*args), args)

    return Tampered


def _default_weights_ok(program: Any, entry_point: str, new_cls: type[nn.Module]) -> bool:
    """Would the wrong module pass with the default initialisation (the old verification's weights)?"""
    original = build_original(program, entry_point, "cpu")
    new = build_new(program, new_cls, original, "cpu")
    inputs = fresh_inputs(program, DEFAULT_SEEDS[0], "cpu")
    with torch.no_grad():
        return compare_outputs(original(*inputs), new(*[t.clone() for t in inputs])).ok


def tamper_main(pairs_dir: str) -> int:
    torch.set_num_threads(1)
    rows = {row["entry_point"]: row for row in read_jsonl(Path(pairs_dir) / "pairs.jsonl")}
    check = CheckSettings(seeds=DEFAULT_SEEDS[:1])
    with tempfile.TemporaryDirectory() as tmp:
        for case, (entry_point, answer) in TAMPERS.items():
            program, new_cls = load_pair(rows[entry_point], Path(tmp))
            honest = verify_pair(program, entry_point, new_cls, "cpu", check)
            wrong = tampered(new_cls, answer)
            result = verify_pair(program, entry_point, wrong, "cpu", check)
            record = {
                "case": case,
                "entry_point": entry_point,
                "honest_ok": honest.ok,
                "ok": result.ok,
                "reason": result.reason,
                "default_weights_ok": _default_weights_ok(program, entry_point, wrong),
            }
            print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    if "--tamper" in sys.argv[2:]:
        raise SystemExit(tamper_main(sys.argv[1]))
    raise SystemExit(main(sys.argv[1], *(int(a) for a in sys.argv[2:3])))
