"""Run report: from a fixture run directory (written here, not by the pipeline), report.md and its PNG plots are
written, the numbers in stats.json are right, and the audit finds the lookalike and the duplicate planted in it."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from synth_modules.report import compute_stats, run_report, write_report

T0 = 1_700_000_000.0
CATALOG = ["Conv2d", "Linear", "ReLU", "GELU", "Tanh", "LayerNorm", "logsumexp", "add", "mul", "Softmax"]


def _program(name: str, init: list[str], body: list[str]) -> str:
    return (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
        f"class {name}(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        + "".join(f"        {line}\n" for line in init)
        + "\n    def forward(self, x):\n"
        + "".join(f"        {line}\n" for line in body)
        + "\n\ndef get_inputs():\n    return [torch.randn(2, 8)]\n\n\ndef get_init_inputs():\n    return [[], {}]\n"
    )


# (sampled ops, __init__ lines, forward lines, num_params, flops, input_numel)
ACCEPTED = [
    (["Linear", "GELU", "LayerNorm"], ["self.fc = nn.Linear(8, 8)", "self.ln = nn.LayerNorm(8)"],
     ["return self.ln(F.gelu(self.fc(x)))"], 88, 1000, 16),
    (["Conv2d", "Tanh", "add"], ["self.conv = nn.Conv2d(3, 8, 3)"],
     ["y = torch.tanh(self.conv(x))", "return torch.cumsum(y, 1) + y.amax()"], 224, 50000, 3072),
    (["Linear", "ReLU", "logsumexp", "mul"], ["self.fc = nn.Linear(8, 4)"],
     ["y = torch.relu(self.fc(x)) * 2.0", "return torch.logsumexp(torch.sin(y), dim=1)"], 36, 400, 16),
    # a KernelBench lookalike the gates did not see (contamination was off): 76_Gemm_Add_ReLU
    (["Linear", "add", "ReLU"], ["self.fc = nn.Linear(8, 8)", "self.b = nn.Parameter(torch.zeros(8))"],
     ["return torch.relu(self.fc(x) + self.b)"], 80, 900, 16),
    # an exact duplicate of the first program under other names (dedup was off)
    (["Linear", "GELU", "LayerNorm"], ["self.lin = nn.Linear(8, 8)", "self.norm = nn.LayerNorm(8)"],
     ["return self.norm(F.gelu(self.lin(x)))"], 88, 1000, 16),
]  # fmt: skip

# (sampled ops, [(stage, category, final)], seconds after T0)
REJECTED = [
    (["Conv2d", "Softmax"], [("compile", "compile_error", False), ("compare", "mismatch", True)], 30.0),
    (["Linear", "Tanh"], [("degenerate", "degenerate_output", True)], 45.0),
    (["Conv2d", "ReLU", "add"], [("gate", "contaminated", True)], 70.0),
]


def make_run_dir(root: Path) -> Path:
    """A run directory as the run store writes it: run.json, program files, manifest.jsonl, rejected.jsonl."""
    root.mkdir(parents=True)
    config = {
        "model_name": "builtin",
        "seed": 3,
        "sampling": "uniform",
        "dedup_threshold": 0.9,
        "num_total_samples": 8,
    }
    (root / "run.json").write_text(
        json.dumps({"config": config, "versions": {"torch": "2.13"}, "started_at": T0})
    )
    with (root / "manifest.jsonl").open("w") as manifest:
        for index, (ops, init, body, params, flops, numel) in enumerate(ACCEPTED):
            entry = f"SynthModel_{'_'.join(ops)}_{index:08x}"
            (root / f"{entry}.py").write_text(_program(entry, init, body))
            record = {
                "id": f"s3-{index:07d}", "index": index, "attempt": index % 2, "entry_point": entry,
                "file": f"{entry}.py", "sampled_ops": ops, "final_pattern": ops, "backend": "builtin",
                "model": "composer", "seed": 3, "prompt_sha256": "", "input_shapes": [[2, 8]],
                "output_shapes": [[2, 8]], "timings": {"eager": 0.01, "compile": 0.5},
                "checks": {"num_params": params, "flops": flops, "input_numel": numel, "output_numel": 16},
                "created_at": T0 + 10.0 * (index + 1), "gates": {},
            }  # fmt: skip
            manifest.write(json.dumps(record) + "\n")
    with (root / "rejected.jsonl").open("w") as rejected:
        for offset, (ops, attempts, when) in enumerate(REJECTED):
            index = len(ACCEPTED) + offset
            for attempt, (stage, category, final) in enumerate(attempts):
                record = {
                    "id": f"s3-{index:07d}", "index": index, "attempt": attempt, "final": final, "stage": stage,
                    "category": category, "message": "...", "sampled_ops": ops, "final_pattern": ops,
                    "backend": "builtin", "entry_point": None, "created_at": T0 + when + attempt,
                }  # fmt: skip
                rejected.write(json.dumps(record) + "\n")
        # an accepted sample's earlier failed attempt (attempt 0 of index 1)
        rejected.write(json.dumps({"id": "s3-0000001", "index": 1, "attempt": 0, "final": False, "stage": "eager",
                                   "category": "eager_error", "message": "...", "sampled_ops": ACCEPTED[1][0],
                                   "backend": "builtin", "created_at": T0 + 15.0}) + "\n")  # fmt: skip
    (root / "stats.json").write_text(json.dumps({"usage": {"calls": 9}, "cost_usd": 0.0}))
    return root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "run")


def test_stats_numbers(run_dir: Path):
    stats = compute_stats(run_dir, catalog=CATALOG)
    assert (stats["samples"], stats["accepted"], stats["rejected"]) == (8, 5, 3)
    assert stats["yield"] == pytest.approx(5 / 8, abs=1e-4)
    assert stats["candidates"] == 5 + 4 + 1
    assert stats["failures_by_category"] == {
        "compile_error": 1, "mismatch": 1, "degenerate_output": 1, "contaminated": 1, "eager_error": 1,
    }  # fmt: skip
    assert stats["final_failures_by_category"] == {"mismatch": 1, "degenerate_output": 1, "contaminated": 1}
    assert stats["per_op"]["Linear"] == {"sampled": 5, "accepted": 4, "yield": 0.8}
    assert stats["per_op"]["Softmax"] == {"sampled": 1, "accepted": 0, "yield": 0.0}
    assert stats["quality"] == {
        "contaminated": 1,
        "duplicates": 0,
        "degenerate_output": 1,
        "near_misses_accepted": 0,
    }
    coverage = stats["coverage"]
    assert coverage["catalog_ops"] == 10
    assert coverage["catalog_ops_present"] == 9 and coverage["catalog_ops_missing"] == ["Softmax"]
    assert coverage["catalog_ops_present_fraction"] == 0.9
    # pairs among accepted: {Linear,GELU,LayerNorm}: 3, {Conv2d,Tanh,add}: 3, {Linear,ReLU,logsumexp,mul}: 6,
    # {Linear,add,ReLU}: 3 of which (Linear,ReLU) is already counted -> 14
    assert coverage["distinct_op_pairs_accepted"] == 14
    assert coverage["distinct_op_pairs_sampled"] == 14 + 3  # + (Conv2d,Softmax), (Linear,Tanh), (Conv2d,ReLU)
    # in code: Conv2d Linear ReLU GELU Tanh LayerNorm logsumexp add mul are all in some forward(); Softmax is not
    assert coverage["catalog_ops_present_in_code"] == 9
    assert coverage["catalog_ops_missing_in_code"] == ["Softmax"]
    sizes = stats["sizes"]
    assert sizes["num_params"]["median"] == 88 and sizes["num_params"]["max"] == 224
    assert sizes["flops"]["min"] == 400 and sizes["input_numel"]["n"] == 5
    assert stats["decided_span_s"] == pytest.approx(60.0)  # first decision at +10 s, last at +70 s


def test_audit_finds_planted_lookalike_and_duplicate(run_dir: Path):
    audit = compute_stats(run_dir, catalog=CATALOG)["audit"]
    assert audit["programs"] == 5
    assert audit["contaminated"] == 1
    assert audit["contaminated_examples"][0]["id"] == "s3-0000003"
    assert audit["contaminated_examples"][0]["kernelbench"] == "76_Gemm_Add_ReLU.py"
    assert audit["exact_duplicates"] == 1 and audit["near_duplicates"] == 0
    assert audit["duplicate_examples"][0] == {
        "id": "s3-0000004",
        "kind": "exact",
        "duplicate_of": "s3-0000000",
    }


def test_report_and_plots_are_written(run_dir: Path):
    report = write_report(run_dir, catalog=CATALOG)
    assert report == run_dir / "report.md"
    text = report.read_text()
    pngs = sorted((run_dir / "report").glob("*.png"))
    assert {p.stem for p in pngs} == {
        "yield_over_time", "failure_categories", "per_op_yield", "op_coverage", "op_pair_coverage", "sizes",
    }  # fmt: skip
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = matplotlib.image.imread(png).shape[:2]
        assert height > 100 and width > 300
        assert f"](report/{png.name})" in text  # embedded with a path relative to report.md
    assert "| yield (accepted / samples) | 62.5% |" in text
    assert "**9/10 (90.0%)**" in text
    assert "matching a KernelBench L1/L2 problem after normalization: **1**" in text
    assert "| degenerate_output | 1 | 1 |" in text
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["usage"] == {"calls": 9}  # what only the live run knew survives
    assert stats["accepted"] == 5 and stats["coverage"]["catalog_ops_present"] == 9


def test_report_command(run_dir: Path, tmp_path: Path, capsys):
    assert run_report(run_dir) == 0
    assert "5/8 accepted" in capsys.readouterr().out
    assert (run_dir / "report.md").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_report(empty) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_report_of_a_run_with_nothing_accepted(tmp_path: Path):
    root = tmp_path / "failed"
    root.mkdir()
    (root / "rejected.jsonl").write_text(
        json.dumps({"id": "s0-0000000", "index": 0, "attempt": 0, "final": True, "stage": "generate",
                    "category": "llm_error", "message": "401", "sampled_ops": ["ReLU"], "created_at": T0}) + "\n"
    )  # fmt: skip
    report = write_report(root, catalog=CATALOG)
    stats = json.loads((root / "stats.json").read_text())
    assert stats["accepted"] == 0 and stats["final_failures_by_category"] == {"llm_error": 1}
    assert stats["coverage"]["catalog_ops_present"] == 0
    assert len(list((root / "report").glob("*.png"))) == 6
    assert "llm_error" in report.read_text()
