"""export-seeds --profile/--device: tasks rescaled, re-validated, filtered and timed in export workers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import torch

from synth_modules.backends.builtin import BuiltinBackend
from synth_modules.config import GeneratorConfig
from synth_modules.export.cli import run_export_seeds
from synth_modules.export.seeds_measured import export_measured_seeds, headroom
from synth_modules.program import make_entry_point
from synth_modules.sampling import UniformSampler
from synth_modules.sandbox.degenerate import axis_invariant
from synth_modules.types import GenerationRequest

BROADCAST = """import torch
import torch.nn as nn

batch_size = 4
features = 32
dtype = torch.float32


class Broadcast(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.fc = nn.Linear(features, features)
        self.to(dtype)

    def forward(self, x):
        return self.fc(x).mean(dim=1, keepdim=True).expand(-1, 8)


def get_inputs():
    return [torch.randn(batch_size, features, dtype=dtype)]


def get_init_inputs():
    return [[features], {}]
"""


def _programs(folder: Path, count: int, dtype: str = "float32") -> None:
    config = GeneratorConfig(seed=21, dtype=dtype)
    sampler, backend = UniformSampler(config), BuiltinBackend(config)
    written = 0
    for index in range(40):
        sample = sampler.sample(index)
        generation = asyncio.run(
            backend.generate(GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id)))
        )
        if any(op in generation.final_pattern for op in ("LSTM", "GRU", "RNN")):
            continue  # slow to compile on a small CPU box
        (folder / f"{generation.entry_point}.py").write_text(generation.source)
        written += 1
        if written == count:
            return


def test_axis_invariant_output_is_degenerate() -> None:
    varied = torch.randn(4, 8)
    assert axis_invariant([varied]) is None
    assert "axis 1" in axis_invariant([varied[:, :1].expand(4, 8).contiguous()])


@pytest.mark.slow  # ~75 s on a shared 2-core box: worker start-up and three CPU compiles
def test_measured_export_on_cpu_writes_ranked_tasks_and_drops_with_reasons(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _programs(run, 2)
    (run / "Broadcast.py").write_text(BROADCAST)
    result = export_measured_seeds(run, tmp_path / "seeds", "cpu", "cpu", jobs=1, timing_budget_s=0.2)
    index = json.loads((tmp_path / "seeds" / "index.json").read_text())
    assert index["attempted"] == 3 and index["profile"] == "cpu"
    assert [s["entry_point"] for s in index["skipped"]] == ["Broadcast"]
    assert index["skipped"][0]["reason"] == "degenerate" and "axis 1" in index["skipped"][0]["message"]
    assert len(result.tasks) == 2 and index["dropped"] == {"degenerate": 1}
    for rank, task in enumerate(index["tasks"], start=1):
        assert task["index"] == rank and task["dtype"] == "float32"
        assert task["eager_us"] > 0 and task["compiled_us"] > 0 and task["flops"] >= 0
        text = (tmp_path / "seeds" / task["file"]).read_text()
        assert "class Model(nn.Module)" in text and "batch_size" in text
    assert [headroom(t) for t in index["tasks"]] == sorted(
        (headroom(t) for t in index["tasks"]), reverse=True
    )


def test_gpu_profile_needs_a_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_export_seeds(tmp_path, tmp_path / "seeds", profile="gpu") == 2
    assert "--device cuda" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_profile_tasks_are_measured_on_cuda(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _programs(run, 3, dtype="bfloat16")
    export_measured_seeds(run, tmp_path / "seeds", "gpu", "cuda", jobs=2)
    index = json.loads((tmp_path / "seeds" / "index.json").read_text())
    for task in index["tasks"]:
        assert task["cuda_graph_us"] > 0 and task["graph_speedup"] < 1.1 and task["roofline_us"] > 0
        assert task["scaling"]["values"] and task["dtype"] == "bfloat16"
