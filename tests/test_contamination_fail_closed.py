"""The contamination gate fails closed: what it cannot read it cannot clear, so it rejects it."""

from __future__ import annotations

import asyncio

import pytest

from synth_modules.gates.base import GateInput
from synth_modules.gates.contamination import ContaminationGate
from synth_modules.types import Verdict

HEADER = "import torch\nimport torch.nn as nn\n\n\n"
FOOTER = (
    "\n\ndef get_inputs():\n    return [torch.randn(2, 8)]\n\n\ndef get_init_inputs():\n    return [[], {}]\n"
)


@pytest.fixture(scope="module")
def gate() -> ContaminationGate:
    return ContaminationGate({"l1", "l2"}, "reordered")


def decide(gate: ContaminationGate, source: str, entry_point: str = "Model"):
    item = GateInput(
        id="t", entry_point=entry_point, source=source, final_pattern=[], verdict=Verdict(True, "done")
    )
    return gate.check(item)


UNREADABLE = {
    "does_not_parse": "class Model(nn.Module:\n    pass\n",
    "no_module_class": HEADER + "class Model:\n    def forward(self, x):\n        return x.relu()\n" + FOOTER,
    "no_op_in_forward": HEADER
    + "class Model(nn.Module):\n    def forward(self, x):\n        return x\n"
    + FOOTER,
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_programs_are_rejected(gate, name):
    decision = decide(gate, UNREADABLE[name])
    assert not decision.keep
    assert decision.category == "unreadable_ops", decision.reason
    assert decision.reason


def test_a_failing_reader_rejects_instead_of_accepting(gate, monkeypatch):
    import synth_modules.gates.contamination as contamination

    def broken_reader(source, entry_point=None):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(contamination, "extract_op_sequence", broken_reader)
    source = (
        HEADER + "class Model(nn.Module):\n    def forward(self, x):\n        return torch.tanh(x)\n" + FOOTER
    )
    decision = decide(gate, source)
    assert not decision.keep and decision.category == "unreadable_ops"
    assert "RecursionError" in decision.reason


def test_readable_program_is_kept_with_its_sequence(gate):
    source = (
        HEADER
        + "class Model(nn.Module):\n    def forward(self, x):\n        return torch.tanh(x) * 2 + x.cumsum(1)\n"
        + FOOTER
    )
    decision = decide(gate, source)
    assert decision.keep, decision.reason
    assert decision.details["op_sequence"]


def test_every_composer_program_is_readable(gate):
    """Failing closed must not cost yield: the built-in composer's programs all have readable ops."""
    from synth_modules.backends.builtin import BuiltinBackend
    from synth_modules.config import GeneratorConfig
    from synth_modules.sampling import UniformSampler
    from synth_modules.types import GenerationRequest

    config = GeneratorConfig(seed=11)
    backend, sampler = BuiltinBackend(config), UniformSampler(config)
    read = 0
    for index in range(300):
        request = GenerationRequest(sample=sampler.sample(index), entry_point="")
        try:
            generation = asyncio.run(backend.generate(request))
        except Exception:  # a composer failure is the composer's test's business
            continue
        decision = decide(gate, generation.source, generation.entry_point)
        assert decision.category != "unreadable_ops", (generation.entry_point, decision.reason)
        read += 1
    assert read >= 280
