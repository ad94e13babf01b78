"""End to end with an LLM backend: model_name=local against the loopback server, the real pipeline, sandbox and run
store. The first answer fails validation; the repair prompt carries the validator's error; the repaired answer
is accepted, and stats.json tells first-try yield from yield after repair."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
import torch
from llm_servers import LoopbackLLMServer, RecordedRequest, Reply, program_answer, valid_program

from synth_modules.config import GeneratorConfig
from synth_modules.run.pipeline import run_generation

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPAIR_MARKER = "rejected by the validator"  # from prompts/repair.toml


class RepairScenario:
    """The first answer has a wrong input size (an eager shape error); every other answer is valid."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers = 0
        self.broken_inputs = ""

    def __call__(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.answers += 1
            number = self.answers
        source, pattern = valid_program(number)
        if number == 1:  # one feature too many: "mat1 and mat2 shapes cannot be multiplied" in eager
            source = re.sub(
                r"torch\.randn\((\d+), (\d+)\)", lambda m: f"torch.randn({m[1]}, {int(m[2]) + 1})", source
            )
            self.broken_inputs = re.search(r"torch\.randn\(\d+, \d+\)", source)[0]
        return Reply(program_answer(source, pattern))


def test_local_backend_run_repairs_a_failed_candidate(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    scenario = RepairScenario()
    with LoopbackLLMServer("openai", responder=scenario, delay_s=0.05) as server:
        config = GeneratorConfig(
            model_name="local:test-model",
            base_url=server.openai_base_url,
            num_total_samples=2,
            num_worker=1,
            max_concurrency=2,
            output_dir=str(tmp_path / "run"),
            progress=False,
            contamination="off",
            dedup=False,
            timeout_s=120,
        )
        summary = run_generation(config)
        posts = server.generation_requests

    assert summary.accepted == 2, summary.stats
    repair_requests = [p for p in posts if REPAIR_MARKER in p.prompt_text]
    assert len(posts) == 3 and len(repair_requests) == 1
    repair_prompt = repair_requests[0].prompt_text
    assert scenario.broken_inputs in repair_prompt  # the failed program went back to the model ...
    assert "eager_error" in repair_prompt or "shape_error" in repair_prompt  # ... with its category

    root = tmp_path / "run"
    manifest = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    rejected = [json.loads(line) for line in (root / "rejected.jsonl").read_text().splitlines()]
    assert sorted(record["attempt"] for record in manifest) == [0, 1]
    assert all(record["backend"] == "local" and record["model"] == "test-model" for record in manifest)
    [failed] = rejected
    assert failed["final"] is False and failed["category"] in {"eager_error", "shape_error"}

    stats = json.loads((root / "stats.json").read_text())
    assert stats["first_try_yield"] == 0.5 and stats["yield_after_repair"] == 1.0
    assert stats["accepted_first_try"] == 1 and stats["accepted_after_repair"] == 1
    assert stats["usage"]["calls"] == 3 and stats["usage"]["prompt_tokens"] == 300
    assert stats["cost_usd"] == 0.0


# KernelBench level 1's matmul behind a Linear layer; its inputs also have the wrong width, so validation would
# reject it as an eager error if the contamination gate did not run first.
_LOOKALIKE = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.fc = nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def get_inputs():
    return [torch.randn(8, 33)]


def get_init_inputs():
    return [[32], {}]
"""


class LookalikeFirst:
    """The first answer is a KernelBench lookalike; every other answer is valid."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.answers += 1
            number = self.answers
        if number == 1:
            return Reply(program_answer(_LOOKALIKE, ["Linear"]))
        source, pattern = valid_program(number)
        return Reply(program_answer(source, pattern))


def test_contamination_rejects_before_validation_and_feeds_the_repair(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    with LoopbackLLMServer("openai", responder=LookalikeFirst(), delay_s=0.0) as server:
        config = GeneratorConfig(
            model_name="local:test-model",
            base_url=server.openai_base_url,
            num_total_samples=1,
            num_worker=1,
            output_dir=str(tmp_path / "run"),
            progress=False,
            dedup=False,
            timeout_s=120,
        )
        summary = run_generation(config)
        posts = server.generation_requests

    assert summary.accepted == 1, summary.stats
    root = tmp_path / "run"
    [failed] = [json.loads(line) for line in (root / "rejected.jsonl").read_text().splitlines()]
    # The gate decided (not the sandbox's eager run, which would have said eager_error or shape_error).
    assert failed["category"] == "contaminated" and failed["stage"] == "gate", failed
    assert "1_Square_matrix_multiplication_" in failed["message"]
    assert len(posts) == 2 and "contaminated" in posts[1].prompt_text
    [accepted] = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    assert accepted["attempt"] == 1
    assert "gate_contamination" in accepted["timings"] and "compile" in accepted["timings"]
