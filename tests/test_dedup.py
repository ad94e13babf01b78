"""Dedup gate: exact duplicates (renamed identifiers, comments, docstrings, formatting, import aliases) and near
duplicates (MinHash LSH, confirmed by exact Jaccard) are rejected, the first copy is kept, distinct programs pass,
and nothing LSH misses slips through (audited by brute force)."""

from __future__ import annotations

import itertools
import random

import pytest

from synth_modules.analysis.canonical import canonical_hash, canonical_source, code_shingles, jaccard
from synth_modules.gates.base import GateInput
from synth_modules.gates.dedup import DedupGate
from synth_modules.types import Verdict

ORIGINAL = """import torch
import torch.nn as nn
import torch.nn.functional as F


class SynthModel_Conv2d_GroupNorm_Mish_1a2b3c4d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, num_groups):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=1)
        self.norm = nn.GroupNorm(num_groups, out_channels)
        self.scale = nn.Parameter(torch.ones(1, out_channels, 1, 1))

    def forward(self, x):
        x = self.conv(x)
        x = self.norm(x)
        x = F.mish(x) * self.scale
        return torch.logsumexp(x, dim=1, keepdim=True)


def get_inputs():
    return [torch.randn(4, 3, 32, 32)]


def get_init_inputs():
    return [[3, 16, 3], {"num_groups": 4}]
"""

RENAMED = '''"""A docstring that was not there before."""
import torch
from torch import nn
import torch.nn.functional as Fn  # another alias


class CompletelyDifferentName(nn.Module):
    """Docs."""

    def __init__(self, cin: int, cout: int, k: int, groups: int) -> None:
        super().__init__()
        # comments everywhere
        self.c1 = nn.Conv2d(cin, cout, k, padding=1)
        self.gn = nn.GroupNorm(groups, cout)
        self.s = nn.Parameter(torch.ones(1, cout, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        inp = self.c1(inp)
        inp = self.gn(inp)
        inp = (Fn.mish(inp)
               * self.s)
        return torch.logsumexp(inp, dim=1, keepdim=True)


def get_inputs():
    return [torch.randn(4, 3, 32, 32)]


def get_init_inputs():
    return [[3, 16, 3], {'groups': 4}]
'''

# Same program with different sizes: a near duplicate, not an exact one.
RESIZED = ORIGINAL.replace("torch.randn(4, 3, 32, 32)", "torch.randn(8, 3, 64, 64)").replace(
    "padding=1", "padding=2"
)

DIFFERENT = """import torch
import torch.nn as nn


class SynthModel_Linear_LayerNorm_GELU_9f8e7d6c(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.ln = nn.LayerNorm(out_features)
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        y = self.ln(self.fc(x))
        y = torch.nn.functional.gelu(y)
        y = torch.cumsum(y, dim=-1)
        return self.drop(y).amax(dim=-1)


def get_inputs():
    return [torch.randn(16, 64)]


def get_init_inputs():
    return [[64, 128], {}]
"""


def item(program_id: str, source: str) -> GateInput:
    return GateInput(
        id=program_id, entry_point="M", source=source, final_pattern=[], verdict=Verdict(True, "done")
    )


def offer(gate: DedupGate, program_id: str, source: str):
    """What the pipeline does at commit time: check, then admit if kept."""
    decision = gate.check(item(program_id, source))
    if decision.keep:
        gate.admit(item(program_id, source))
    return decision


def test_canonical_form_ignores_names_docs_comments_layout_and_aliases():
    assert canonical_source(ORIGINAL) == canonical_source(RENAMED)
    assert canonical_hash(ORIGINAL) == canonical_hash(RENAMED)
    assert canonical_hash(ORIGINAL) != canonical_hash(RESIZED)
    assert canonical_hash(ORIGINAL) != canonical_hash(DIFFERENT)


def test_exact_duplicate_is_rejected_and_first_kept():
    gate = DedupGate(threshold=0.9)
    assert offer(gate, "a", ORIGINAL).keep
    decision = offer(gate, "b", RENAMED)
    assert not decision.keep
    assert decision.category == "duplicate"
    assert decision.details == {"kind": "exact", "duplicate_of": "a"}
    assert len(gate) == 1


def test_near_duplicate_is_rejected():
    gate = DedupGate(threshold=0.8)
    similarity = jaccard(code_shingles(ORIGINAL), code_shingles(RESIZED))
    assert 0.8 <= similarity < 1.0
    assert offer(gate, "a", ORIGINAL).keep
    decision = offer(gate, "b", RESIZED)
    assert not decision.keep and decision.category == "duplicate"
    assert decision.details["kind"] == "near" and decision.details["duplicate_of"] == "a"
    assert decision.details["jaccard"] == pytest.approx(similarity, abs=1e-4)


def test_threshold_is_configurable():
    similarity = jaccard(code_shingles(ORIGINAL), code_shingles(RESIZED))
    strict = DedupGate(threshold=min(1.0, similarity + 0.02))
    assert offer(strict, "a", ORIGINAL).keep
    assert offer(strict, "b", RESIZED).keep  # below this threshold: kept
    assert not offer(strict, "c", RENAMED).keep  # exact duplicates are caught at any threshold


def test_different_programs_pass():
    gate = DedupGate(threshold=0.9)
    assert offer(gate, "a", ORIGINAL).keep
    decision = offer(gate, "b", DIFFERENT)
    assert decision.keep
    assert jaccard(code_shingles(ORIGINAL), code_shingles(DIFFERENT)) < 0.5


def test_programs_admitted_at_startup_count():
    """Earlier runs in the output_dir are admitted first (resume); a new copy of one of them is a duplicate."""
    gate = DedupGate(threshold=0.9)
    gate.admit(item("earlier-run-0001", ORIGINAL))
    gate.admit(item("earlier-run-0001", ORIGINAL))  # admitting twice is harmless
    assert len(gate) == 1
    decision = gate.check(item("new-0001", RENAMED))
    assert not decision.keep and decision.details["duplicate_of"] == "earlier-run-0001"


_OPS = [
    ("nn.ReLU()", None), ("nn.GELU()", None), ("nn.Tanh()", None), ("nn.Sigmoid()", None), ("nn.SiLU()", None),
    ("nn.Mish()", None), ("nn.Softplus()", None), ("nn.ELU()", None), ("nn.Hardswish()", None),
    (None, "x = x * {c}"), (None, "x = x + {c}"), (None, "x = torch.clamp(x, -{c}, {c})"),
    (None, "x = x - x.mean(dim=1, keepdim=True)"), (None, "x = torch.softmax(x, dim=1)"),
]  # fmt: skip


def _random_program(rng: random.Random) -> str:
    """A small program from a template: a shared skeleton, random ops and sizes (many near duplicates)."""
    channels = rng.choice([8, 16])
    init = [f"self.conv = nn.Conv2d(3, {channels}, 3)"]
    body = ["x = self.conv(x)"]
    for position in range(rng.randint(1, 3)):
        module, expr = rng.choice(_OPS)
        if module is not None:
            init.append(f"self.m{position} = {module}")
            body.append(f"x = self.m{position}(x)")
        else:
            body.append(expr.format(c=rng.choice([0.5, 2.0])))
    return (
        "import torch\nimport torch.nn as nn\n\n\nclass M(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n"
        + "".join(f"        {line}\n" for line in init)
        + "\n    def forward(self, x):\n"
        + "".join(f"        {line}\n" for line in body)
        + "        return x\n\n\ndef get_inputs():\n    return [torch.randn(2, 3, 16, 16)]\n\n\n"
        "def get_init_inputs():\n    return [[], {}]\n"
    )


@pytest.mark.parametrize("threshold", [0.8, 0.9])
def test_accepted_set_has_no_near_duplicates_by_brute_force(threshold: float):
    rng = random.Random(7)
    gate = DedupGate(threshold=threshold)
    kept: dict[str, str] = {}
    rejected: dict[str, tuple[str, str]] = {}
    for index in range(250):
        source = _random_program(rng)
        decision = offer(gate, f"p{index}", source)
        if decision.keep:
            kept[f"p{index}"] = source
        else:
            rejected[f"p{index}"] = (source, decision.details["duplicate_of"])
    shingles = {key: code_shingles(src) for key, src in kept.items()}
    worst = max(jaccard(shingles[a], shingles[b]) for a, b in itertools.combinations(shingles, 2))
    assert worst < threshold  # LSH lost nothing: every pair of kept programs is below the threshold
    assert len({canonical_hash(src) for src in kept.values()}) == len(kept)
    assert len(kept) > 10 and len(rejected) > 50  # the template makes plenty of both
    for source, original in rejected.values():  # and every rejection names a real near/exact twin
        assert original in kept
        assert jaccard(code_shingles(source), shingles[original]) >= threshold
