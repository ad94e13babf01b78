"""Program dtypes: the config key, the composer's output, validation against a float32 reference, pair
verification per dtype, and kernels computing in the wrong precision being caught."""

from __future__ import annotations

import asyncio
import types

import pytest
import torch
from torch import nn

from synth_modules.backends.builtin import BuiltinBackend
from synth_modules.composer import compose
from synth_modules.composer.dtypes import cpu_unsupported
from synth_modules.config import ConfigError, GeneratorConfig, build_config
from synth_modules.export.verify import compare_low_precision, float32_reference, verify_pair
from synth_modules.program import declared_dtype, make_entry_point
from synth_modules.sampling import UniformSampler, sample_dtype, sample_rng
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.sandbox.compare import compare
from synth_modules.types import GenerationRequest, Sample


def test_dtype_key_is_validated_with_one_clear_error(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"dtype must be one of float32, bfloat16, float16, mixed; got 'int8'"
    ):
        build_config(None, {"dtype": "int8", "output_dir": str(tmp_path)})
    assert build_config(None, {"dtype": "mixed", "output_dir": str(tmp_path)}).dtype == "mixed"


def test_mixed_draws_every_dtype_deterministically() -> None:
    drawn = [sample_dtype("mixed", 0, i) for i in range(60)]
    assert set(drawn) == {"float32", "bfloat16", "float16"}
    assert drawn == [sample_dtype("mixed", 0, i) for i in range(60)]
    assert sample_dtype("bfloat16", 0, 5) == "bfloat16"


def _generations(dtype: str, count: int, seed: int = 5) -> list:
    config = GeneratorConfig(seed=seed, dtype=dtype)
    sampler, backend = UniformSampler(config), BuiltinBackend(config)
    out = []
    for index in range(count):
        sample = sampler.sample(index)
        out.append(
            asyncio.run(
                backend.generate(GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id)))
            )
        )
    return out


def test_the_program_states_its_dtype_for_inputs_and_parameters() -> None:
    for generation in _generations("bfloat16", 8):
        assert declared_dtype(generation.source) == "bfloat16"
        namespace: dict = {}
        exec(compile(generation.source, "p.py", "exec"), namespace)  # our own composer's output
        args, kwargs = namespace["get_init_inputs"]()
        model = namespace[generation.entry_point](*args, **kwargs)
        assert all(p.dtype == torch.bfloat16 for p in model.parameters())
        floats = [t for t in namespace["get_inputs"]() if t.is_floating_point()]
        assert all(t.dtype == torch.bfloat16 for t in floats)


def test_ops_without_half_cpu_kernels_are_left_out() -> None:
    assert "AvgPool3d" in cpu_unsupported("bfloat16") and not cpu_unsupported("float32")
    sample = Sample(0, "t-0", 0, ["Conv3d"], [], ["AvgPool3d"])
    placed = {
        dtype: sum(
            "AvgPool3d" in compose(sample, sample_rng(0, k, "t"), dtype=dtype).final_pattern for k in range(8)
        )
        for dtype in ("float32", "bfloat16")
    }
    assert placed["float32"] > 0 and placed["bfloat16"] == 0


@pytest.mark.slow
def test_half_programs_validate_against_a_float32_reference() -> None:
    jobs = []
    for dtype in ("bfloat16", "float16"):
        for g in _generations(dtype, 3, seed=9):
            jobs.append(ValidationJob(g.entry_point, g.source, g.entry_point, g.expected_output_shapes))
    with SandboxPool(num_workers=2, options=SandboxOptions(timeout_s=240, memory_limit_mb=2048)) as pool:
        verdicts = pool.validate_all(jobs)
    assert sum(v.ok for v in verdicts) >= 5, [v.message for v in verdicts]
    assert all(v.checks.get("reference") == "float32" for v in verdicts if v.ok)


# ---------------------------------------------------------------- kernels in the wrong precision are caught

PROGRAM = """import torch
import torch.nn as nn

batch_size = 64
features = 256
dtype = torch.{dtype}


class Net(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.fc = nn.Linear(features, features)
        self.to(dtype)

    def forward(self, x):
        return torch.exp(self.fc(x)) * 4096.0


def get_inputs():
    return [torch.randn(batch_size, features, dtype=dtype) * 3.0]


def get_init_inputs():
    return [[features], {{}}]
"""


def _program(dtype: str) -> types.ModuleType:
    module = types.ModuleType(f"net_{dtype}")
    exec(compile(PROGRAM.format(dtype=dtype), "net.py", "exec"), module.__dict__)
    return module


def _new_class(compute: torch.dtype | None, out: torch.dtype | None = None) -> type[nn.Module]:
    """A stand-in for a generated kernel: the same math, computed in `compute`, returned in `out`."""

    class NetNew(nn.Module):
        def __init__(self, features):
            super().__init__()
            self.fc = nn.Linear(features, features)

        def forward(self, x):
            w, b = self.fc.weight, self.fc.bias
            dtype = compute or x.dtype
            y = torch.exp(x.to(dtype) @ w.to(dtype).t() + b.to(dtype)) * 4096.0
            return y.to(out or x.dtype)

    return NetNew


def test_a_correct_low_precision_kernel_passes_the_float32_reference() -> None:
    program = _program("bfloat16")
    assert verify_pair(program, "Net", _new_class(torch.float32), "cpu").ok


def test_computing_in_float16_on_a_bfloat16_task_is_caught() -> None:
    result = verify_pair(_program("bfloat16"), "Net", _new_class(torch.float16), "cpu")
    assert not result.ok and "vs float32 reference" in result.reason  # fp16 overflows where bf16 does not


def test_returning_float32_on_a_bfloat16_task_is_caught() -> None:
    result = verify_pair(_program("bfloat16"), "Net", _new_class(torch.float32, out=torch.float32), "cpu")
    assert not result.ok and "torch.float32" in result.reason


def test_computing_in_bfloat16_on_a_float32_task_is_caught() -> None:
    result = verify_pair(_program("float32"), "Net", _new_class(torch.bfloat16), "cpu")
    assert not result.ok


def test_low_precision_rule_is_the_sandbox_rule() -> None:
    torch.manual_seed(0)
    program = _program("float16")
    model = program.Net(256).eval()
    x = program.get_inputs()[0] * 0.1
    with torch.no_grad():
        expected, reference = model(x), float32_reference(model, [x])
        drifted = reference.to(torch.float16) * 1.05  # a 5% error: over float16's 1e-2 tolerance
    assert compare([reference.half()], [expected]).ok
    assert not compare_low_precision(expected, drifted, reference).ok


def test_llm_prompts_ask_for_size_constants_and_the_dtype() -> None:
    from synth_modules.backends.prompting import build_prompt

    sample = Sample(0, "t-0", 0, ["Linear"], [], ["ReLU"])
    prompt = build_prompt(GenerationRequest(sample, "SynthModel_Linear_Relu_x", dtype="bfloat16"))
    text = prompt.text
    assert "dtype = torch.bfloat16" in text and "module-level constant" in text
