"""KernelBench-style degenerate tasks are rejected as `degenerate_output` by the real sandbox.

Each program below runs, compiles and matches under torch.compile -- a kernel benchmark built from it would still be
worthless, because an all-constant (or input-ignoring) kernel would pass it. A healthy control program must be
accepted by the same pool, so the rejections are the checks' doing and not a broken sandbox.
"""

from __future__ import annotations

import textwrap

import pytest

from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.types import Verdict

pytestmark = pytest.mark.slow  # one warm-up of the sandbox workers (torch + Inductor) dominates


def program(init: str, forward: str, inputs: str, init_inputs: str = "[[], {}]") -> str:
    return (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
        "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        + textwrap.indent(textwrap.dedent(init).strip() or "pass", " " * 8)
        + "\n\n    def forward(self, x):\n"
        + textwrap.indent(textwrap.dedent(forward).strip(), " " * 8)
        + f"\n\n\ndef get_inputs():\n    return {inputs}\n\n\ndef get_init_inputs():\n    return {init_inputs}\n"
    )


DEGENERATE = {
    # GEMM, softmax over the features, then a sum over the same features: every output is exactly 1.
    "gemm_softmax_sum": program(
        "self.gemm = nn.Linear(16, 32)",
        "x = torch.softmax(self.gemm(x), dim=1)\nreturn torch.sum(x, dim=1, keepdim=True)",
        "[torch.randn(8, 16)]",
    ),
    # KernelBench 80-style: max over the features, then subtract the mean over that size-1 axis: all zeros.
    "gemm_max_subtract_gelu": program(
        "self.gemm = nn.Linear(16, 32)",
        """
        x = torch.max(self.gemm(x), dim=1, keepdim=True).values
        x = x - x.mean(dim=1, keepdim=True)
        return F.gelu(x)
        """,
        "[torch.randn(8, 16)]",
    ),
    # Min over channels (keepdim), then softmax over that size-1 axis: all ones.
    "conv_min_softmax": program(
        "self.conv = nn.Conv2d(3, 8, 3)",
        "x = torch.min(self.conv(x), dim=1, keepdim=True)[0]\nreturn torch.softmax(x, dim=1)",
        "[torch.randn(2, 3, 16, 16)]",
    ),
    # The output ignores the input: only its shape is used.
    "output_ignores_input": program(
        "self.fc = nn.Linear(16, 16)",
        "return torch.tanh(self.fc(torch.ones_like(x)))",
        "[torch.randn(8, 16)]",
    ),
    # A learnable parameter that never reaches the output.
    "unused_parameter": program(
        "self.fc = nn.Linear(16, 16)\nself.scale = nn.Parameter(torch.randn(16))",
        "y = x * self.scale\nreturn torch.relu(self.fc(x))",
        "[torch.randn(8, 16)]",
    ),
    # A per-channel bias that instance norm cancels exactly: its gradient is zero.
    "bias_cancelled_by_instance_norm": program(
        "self.conv = nn.Conv2d(3, 8, 3, bias=False)\nself.bias = nn.Parameter(torch.randn(1, 8, 1, 1))",
        "return F.instance_norm(self.conv(x) + self.bias)",
        "[torch.randn(2, 3, 16, 16)]",
    ),
    # Non-finite: the log of a strictly negative tensor.
    "log_of_negative": program(
        "self.fc = nn.Linear(16, 16)",
        "return torch.log(-self.fc(x).abs() - 1.0)",
        "[torch.randn(8, 16)]",
    ),
    # Near zero everywhere.
    "vanishing_scale": program(
        "self.fc = nn.Linear(16, 16)",
        "return torch.sigmoid(self.fc(x)) * 1e-12",
        "[torch.randn(8, 16)]",
    ),
}

CONTROL = program(
    "self.gemm = nn.Linear(16, 32)\nself.norm = nn.LayerNorm(32)",
    "return torch.logsumexp(F.gelu(self.norm(self.gemm(x))), dim=1)",
    "[torch.randn(8, 16)]",
)


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Verdict]:
    jobs = {**DEGENERATE, "control": CONTROL}
    with SandboxPool(2, SandboxOptions(timeout_s=120)) as pool:
        futures = {
            name: pool.submit(ValidationJob(id=name, source=source, entry_point="Model"))
            for name, source in jobs.items()
        }
        return {name: future.result(timeout=900) for name, future in futures.items()}


def test_control_program_is_accepted(verdicts: dict[str, Verdict]):
    control = verdicts["control"]
    assert control.ok, (control.stage, control.category, control.message)


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_task_is_rejected(verdicts: dict[str, Verdict], name: str):
    verdict = verdicts[name]
    assert not verdict.ok, f"{name} was accepted"
    assert verdict.category == "degenerate_output", (name, verdict.stage, verdict.category, verdict.message)
    assert verdict.message
