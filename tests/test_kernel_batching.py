"""Batched C++ kernel builds: same kernels, same numbers, one g++ run per graph, and a safe fallback.

Each test runs in its own interpreter: `install()` patches Inductor's AsyncCompile class for the whole process,
and the rest of the suite compiles with stock Inductor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_PRELUDE = """
import json, os, sys, tempfile
os.environ.update(TORCHINDUCTOR_COMPILE_THREADS="1", TORCHINDUCTOR_FX_GRAPH_CACHE="0",
                  TORCHINDUCTOR_AUTOGRAD_CACHE="0", TORCHINDUCTOR_CACHE_DIR=tempfile.mkdtemp())
import torch
from synth_modules.sandbox import kernel_batching

class TwoKernels(torch.nn.Module):
    # A matmul (an extern call, not a C++ kernel) splits the pointwise work into two fused kernels.
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(16, 8))

    def forward(self, x):
        h = torch.relu(x * 2.0 + 1.0) @ self.w
        return torch.log_softmax(h, dim=-1) + h.sigmoid()

torch.manual_seed(0)
model, x = TwoKernels().eval(), torch.randn(4, 16)
"""


def _run(body: str, tmp_path: Path) -> dict:
    script = tmp_path / "script.py"
    script.write_text(_PRELUDE + textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_batched_build_matches_stock_bit_for_bit_with_one_gxx_run(tmp_path):
    result = _run(
        """
        with torch.no_grad():
            stock = torch.compile(model)(x)
            torch._dynamo.reset()
            assert kernel_batching.install() and kernel_batching.installed()
            batched = torch.compile(model)(x)
        print(json.dumps({"equal": bool(torch.equal(stock, batched)), **kernel_batching.STATS.snapshot()}))
        """,
        tmp_path,
    )
    assert result == {"equal": True, "kernels": 2, "builds": 1, "fallbacks": 0}


def test_a_batch_that_fails_to_compile_is_rebuilt_alone_and_the_real_error_surfaces(tmp_path):
    result = _run(
        """
        from torch._inductor.async_compile import AsyncCompile
        kernel_batching.install()
        good = 'extern "C" void kernel(const float* in_ptr0, float* out_ptr0) { out_ptr0[0] = in_ptr0[0] + 1.0f; }'
        broken = 'extern "C" void kernel(float* out_ptr0) { out_ptr0[0] = undeclared_name; }'
        scope = {}
        compiler = AsyncCompile()
        scope["k_good"] = compiler.cpp_pybinding(["const float*", "float*"], good)
        scope["k_broken"] = compiler.cpp_pybinding(["float*"], broken)
        try:
            compiler.wait(scope)
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"error": error, **kernel_batching.STATS.snapshot()}))
        """,
        tmp_path,
    )
    # The batch failed, so both kernels were built alone (2 builds after the failed one) and the broken
    # kernel's own g++ error came from Inductor's stock build.
    assert result["fallbacks"] == 1 and result["kernels"] == 2 and result["builds"] == 3
    assert result["error"] is not None and "undeclared_name" in result["error"]


def test_kernels_batching_cannot_parse_are_built_by_stock_inductor(tmp_path):
    result = _run(
        """
        from torch._inductor.async_compile import AsyncCompile
        kernel_batching.install()
        # An entry that is not written `extern "C" void kernel(`: the batch is not attempted.
        odd = 'extern "C" __attribute__((visibility("default"))) void kernel(float* out_ptr0) { out_ptr0[0] = 2.0f; }'
        plain = 'extern "C" void kernel(float* out_ptr0) { out_ptr0[0] = 3.0f; }'
        compiler = AsyncCompile()
        scope = {"a": compiler.cpp_pybinding(["float*"], odd), "b": compiler.cpp_pybinding(["float*"], plain)}
        compiler.wait(scope)
        a, b = torch.zeros(1), torch.zeros(1)
        scope["a"](a)
        scope["b"](b)
        print(json.dumps({"values": [a.item(), b.item()], **kernel_batching.STATS.snapshot()}))
        """,
        tmp_path,
    )
    assert result == {"values": [2.0, 3.0], "kernels": 2, "builds": 2, "fallbacks": 0}


def test_merged_source_keeps_each_kernel_in_its_own_namespace():
    from synth_modules.sandbox.kernel_batching import _Kernel, merged_source

    source = merged_source(
        [
            _Kernel(
                ["float*"], '#include <cmath>\nextern "C" void kernel(float* out_ptr0) { out_ptr0[0] = 1; }'
            ),
            _Kernel(
                ["float*", "int64_t"], '#include <cmath>\nextern "C" void kernel(float* o, int64_t n) {}'
            ),
        ]
    )
    assert source.count("#include <cmath>") == 1
    assert 'extern "C" void kernel' not in source
    assert "namespace k0 {" in source and "namespace k1 {" in source
    assert (
        "k1::kernel(static_cast<float*>(synth_batch::as_pointer(args, 0)), synth_batch::as_int64(args, 1))"
        in source
    )
    assert source.count("PyInit_kernel") == 1
