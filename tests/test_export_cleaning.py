"""Cleaning and wrapping Inductor output, checked on committed GPU captures (tests/fixtures/pairs).

The fixture rows were produced by export-pairs on an H200 from tests/fixtures/programs; each keeps the raw
captured code and the capture record, so the CPU can redo the cleaning and wrapping and compare.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from synth_modules.export.clean import KernelLaunch, clean_output_code, launch_grid
from synth_modules.export.errors import ExportError
from synth_modules.export.wrap import CallSpec, new_class_name, wrap_pair
from synth_modules.program import find_module_classes
from synth_modules.run.store import read_jsonl
from synth_modules.types import Category

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "pairs"
ROWS = list(read_jsonl(PAIRS / "pairs.jsonl"))
SCAFFOLDING = ("async_compile", "triton_heuristics", "get_raw_stream", "_DeviceGuard", ".run(", "set_device")


def _reclean(row: dict) -> str:
    info = json.loads(row["capture_info"])
    launches = {name: KernelLaunch.from_dict(data) for name, data in info["launches"].items()}
    cleaned = clean_output_code(row["original_triton_code"], launches)
    return wrap_pair(row["python_code"], row["entry_point"], cleaned, CallSpec.from_dict(info["call"]))


def test_fixture_covers_the_kernel_shapes_we_clean() -> None:
    grids = {
        launch["grid_type"] for row in ROWS for launch in json.loads(row["capture_info"])["launches"].values()
    }
    kinds = {json.loads(row["capture_info"])["call"]["output_kind"] for row in ROWS}
    assert len(ROWS) >= 8 and {"Grid1D", "Grid2D"} <= grids and {"tensor", "tuple"} <= kinds
    assert any(row["kernel_count"] > 1 for row in ROWS)
    assert any("extern_kernels" in row["triton_code"] for row in ROWS)  # cuDNN/cuBLAS calls stay in call()


@pytest.mark.parametrize("row", ROWS, ids=[r["entry_point"] for r in ROWS])
def test_recleaning_the_capture_reproduces_the_pair(row: dict) -> None:
    # ASTs, not text: the formatter's version may differ from the GPU machine's.
    assert ast.dump(ast.parse(_reclean(row))) == ast.dump(ast.parse(row["triton_code"]))


@pytest.mark.parametrize("row", ROWS, ids=[r["entry_point"] for r in ROWS])
def test_cleaned_code_is_plain_triton(row: dict) -> None:
    code = row["triton_code"]
    for marker in SCAFFOLDING:
        assert marker not in code, marker
    assert "# kernel path" in row["original_triton_code"]  # the raw capture had comments ...
    comments = [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.COMMENT]
    assert comments == []  # ... the pair has none
    tree = ast.parse(code)
    kernels = [
        f
        for f in tree.body
        if isinstance(f, ast.FunctionDef) and [ast.unparse(d) for d in f.decorator_list] == ["triton.jit"]
    ]
    assert len(kernels) == row["kernel_count"]
    launches = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Subscript)
        and ast.unparse(n.func.value).startswith("triton_")
    ]
    assert len(launches) >= len(kernels)
    for launch in launches:  # inlined launch parameters: a literal grid and the autotuned config
        assert isinstance(launch.func.slice, ast.Tuple)  # type: ignore[attr-defined]
        assert all(isinstance(e, ast.Constant) and e.value >= 1 for e in launch.func.slice.elts)  # type: ignore[attr-defined]
        keywords = {k.arg: k.value for k in launch.keywords}
        assert {"XBLOCK", "num_warps", "num_stages"} <= set(keywords)
        assert all(isinstance(v, ast.Constant) for v in keywords.values())


@pytest.mark.parametrize("row", ROWS, ids=[r["entry_point"] for r in ROWS])
def test_new_module_keeps_the_original_init(row: dict) -> None:
    original = next(
        c for c in find_module_classes(ast.parse(row["python_code"])) if c.name == row["entry_point"]
    )
    new = next(
        c
        for c in find_module_classes(ast.parse(row["triton_code"]))
        if c.name == new_class_name(row["entry_point"])
    )
    init = {n.name: n for n in original.body if isinstance(n, ast.FunctionDef)}["__init__"]
    new_init = {n.name: n for n in new.body if isinstance(n, ast.FunctionDef)}["__init__"]
    assert ast.dump(init) == ast.dump(new_init)
    forward = {n.name: n for n in new.body if isinstance(n, ast.FunctionDef)}["forward"]
    assert "call(" in ast.unparse(forward)


def test_launch_grid_matches_inductor_rules() -> None:
    assert launch_grid("Grid1D", {"xnumel": 1000}, {"XBLOCK": 128}) == (8,)
    assert launch_grid("Grid2D", {"xnumel": 48, "ynumel": 160}, {"XBLOCK": 16, "YBLOCK": 256}) == (3,)
    assert launch_grid("Grid2D", {"xnumel": 16, "ynumel": 1024}, {"XBLOCK": 16, "YBLOCK": 64}) == (1, 16)
    assert launch_grid("Grid1D", {"xnumel": 7}, {}) == (7,)  # no XBLOCK: one program per element
    # y beyond CUDA's 65535 limit spills into z, as Inductor's launcher does
    assert launch_grid(
        "Grid2DWithYZOverflow", {"xnumel": 1, "ynumel": 70000}, {"XBLOCK": 1, "YBLOCK": 1}
    ) == (
        1,
        35000,
        2,
    )
    with pytest.raises(ExportError) as error:
        launch_grid("CooperativeReductionGrid", {"xnumel": 8}, {"XBLOCK": 1})
    assert error.value.category == Category.UNSUPPORTED


EXTERN_ONLY = """
import torch
from torch._inductor.select_algorithm import extern_kernels
empty_strided_cuda = torch._C._dynamo.guards._empty_strided_cuda

def call(args):
    arg0_1, arg1_1 = args
    args.clear()
    buf0 = empty_strided_cuda((8, 16), (16, 1), torch.float32)
    extern_kernels.mm(arg0_1, arg1_1, out=buf0)
    return (buf0,)
"""


def test_capture_without_triton_kernels_is_unsupported() -> None:
    with pytest.raises(ExportError) as error:
        clean_output_code(EXTERN_ONLY, {})
    assert error.value.category == Category.UNSUPPORTED and "no Triton kernel" in error.value.message


def test_missing_launch_configuration_is_a_capture_failure() -> None:
    with pytest.raises(ExportError) as error:
        clean_output_code(ROWS[0]["original_triton_code"], {})
    assert error.value.category == Category.CAPTURE_FAILURE


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_fixture_pairs_verify_in_the_triton_interpreter_on_cpu() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "triton_cpu_check.py"), str(PAIRS)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["entry_point"] for r in results] == [row["entry_point"] for row in ROWS]
    verified = [r for r in results if "interpreter_bug" not in r]
    assert all(r["ok"] for r in verified), [r for r in verified if not r["ok"]]
    assert all(r["max_abs_error"] < 1e-3 for r in verified)
    # Only looped reductions hit the interpreter's NumPy >= 2.4 bug; everything else must really run.
    assert len(verified) >= len(ROWS) - 1


CONSTANT_READER = '''
import torch
import triton
import triton.language as tl
empty_strided_cuda = torch._C._dynamo.guards._empty_strided_cuda
async_compile = AsyncCompile()
triton_poi_fused_add_0 = async_compile.triton('triton_poi_fused_add_0', """
import triton
import triton.language as tl
@triton.jit
def triton_poi_fused_add_0(in_ptr0, in_ptr1, out_ptr0, xnumel, XBLOCK : tl.constexpr):
    xnumel = 8
    xindex = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK)[:]
    tl.store(out_ptr0 + xindex, tl.load(in_ptr0 + xindex) + tl.load(in_ptr1 + xindex), xindex < xnumel)
""", device_str='cuda')

def call(args):
    arg0_1, = args
    args.clear()
    buf0 = empty_strided_cuda((8,), (1,), torch.float32)
    stream0 = get_raw_stream(0)
    triton_poi_fused_add_0.run(arg0_1, _tensor_constant0, buf0, 8, stream=stream0)
    return (buf0,)
'''


def test_graph_constants_are_unsupported_not_left_dangling() -> None:
    launch = KernelLaunch(grid_type="Grid1D", kwargs={"XBLOCK": 8}, num_warps=1, num_stages=1)
    with pytest.raises(ExportError) as error:
        clean_output_code(CONSTANT_READER, {"triton_poi_fused_add_0": launch})
    assert error.value.category == Category.UNSUPPORTED and "_tensor_constant0" in error.value.message
    # the same module without the constant cleans into a direct launch
    cleaned = clean_output_code(
        CONSTANT_READER.replace("_tensor_constant0", "arg0_1"), {"triton_poi_fused_add_0": launch}
    )
    assert (
        "triton_poi_fused_add_0[(1,)](arg0_1, arg0_1, buf0, 8, XBLOCK=8, num_warps=1, num_stages=1)"
        in cleaned.source
    )
    assert cleaned.call_arg_count == 1 and cleaned.kernel_names == ["triton_poi_fused_add_0"]
