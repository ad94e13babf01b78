"""Size constants and the rescaling step, with the real meta-device cost estimate."""

from __future__ import annotations

import asyncio

import pytest

from synth_modules.backends.builtin import BuiltinBackend
from synth_modules.config import GeneratorConfig
from synth_modules.program import make_entry_point
from synth_modules.sampling import UniformSampler
from synth_modules.scaling import (
    CPU,
    GPU,
    estimate_source,
    find_size_constants,
    rewrite_constants,
    scale_source,
)
from synth_modules.types import GenerationRequest

# A KernelBench-style program as an LLM would write it: sizes as module-level constants, one hard-coded.
HANDWRITTEN = """import torch
import torch.nn as nn

batch_size = 8
in_channels = 3
out_channels = 16
height, width = 32, 32
kernel_size = 3
hidden = 64


class Net(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, hidden):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=1)
        self.fc = nn.Linear(out_channels, hidden)

    def forward(self, x):
        x = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.fc(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, 32, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, hidden]
"""


def _estimate(entry_point: str):
    return lambda text: estimate_source(text, entry_point)


def test_size_constants_are_found_with_their_roles() -> None:
    found = {c.name: (c.value, c.role) for c in find_size_constants(HANDWRITTEN)}
    # height is a tuple assignment and unused: not a constant; width is read by get_inputs only via the tuple
    assert found == {
        "batch_size": (8, "batch"),
        "in_channels": (3, "feature"),
        "out_channels": (16, "feature"),
        "kernel_size": (3, "fixed"),
        "hidden": (64, "feature"),
    }
    constants = find_size_constants(HANDWRITTEN)
    text = rewrite_constants(HANDWRITTEN, constants, {"batch_size": 256, "hidden": 1024})
    assert "batch_size = 256\n" in text and "hidden = 1024\n" in text and "kernel_size = 3\n" in text


def test_gpu_profile_grows_sizes_and_keeps_the_program_valid() -> None:
    scaled = scale_source(HANDWRITTEN, GPU, _estimate("Net"))
    assert scaled.values["batch_size"] >= GPU.soft_caps["batch"]
    assert scaled.values.get("out_channels", 16) > 16
    assert "kernel_size" not in scaled.values  # not a size
    assert scaled.estimate is not None and scaled.estimated_s >= scaled.target_s
    assert scaled.estimate.memory_bytes <= GPU.memory_budget_bytes
    again = estimate_source(scaled.source, "Net")  # the rescaled program still runs
    assert again.flops == scaled.estimate.flops > 0


def test_a_size_the_code_hard_codes_is_frozen_not_broken() -> None:
    coupled = HANDWRITTEN.replace(
        "torch.randn(batch_size, in_channels, 32, width)", "torch.randn(batch_size, 3, 32, 32)"
    )
    scaled = scale_source(coupled, GPU, _estimate("Net"))
    assert "in_channels" in scaled.frozen  # the input keeps 3 channels: growing the conv's would break it
    assert "in_channels" not in scaled.values
    estimate_source(scaled.source, "Net")


def test_cpu_profile_and_programs_without_constants_are_unchanged() -> None:
    assert scale_source(HANDWRITTEN, CPU, _estimate("Net")).source == HANDWRITTEN
    literal = HANDWRITTEN.replace("batch_size, in_channels, 32, width", "8, 3, 32, 32").replace(
        "[in_channels, out_channels, kernel_size, hidden]", "[3, 16, 3, 64]"
    )
    result = scale_source(literal, GPU, _estimate("Net"))
    assert result.source == literal and result.reason == "no size constants"


@pytest.fixture(scope="module")
def composed():
    config = GeneratorConfig(seed=3)
    sampler, backend = UniformSampler(config), BuiltinBackend(config)
    out = []
    for index in range(6):
        sample = sampler.sample(index)
        request = GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id))
        out.append(asyncio.run(backend.generate(request)))
    return out


def test_composer_programs_carry_size_constants_and_rescale(composed) -> None:
    grown = 0
    for generation in composed:
        names = {c.name for c in find_size_constants(generation.source)}
        assert "dtype = torch.float32\n" in generation.source
        assert names, generation.source
        # an RNN runs step by step on the meta device (thousands of operator calls): bound the search's time
        scaled = scale_source(generation.source, GPU, _estimate(generation.entry_point), budget_s=3.0)
        grown += bool(scaled.values)
        estimate_source(scaled.source, generation.entry_point)
    assert grown >= 5
