"""The sandbox as the pipeline uses it: static checks + warm workers + torch.compile, on the whole corpus.

One pool for the module (its warm-up is the expensive part). Good programs are validated in the same pool call
as the broken and malicious ones and must still pass.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandbox_corpus import ESCAPE_MARKER_GLOB, load_corpus, outcome, validate_corpus

from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob

REPO = Path(__file__).resolve().parent.parent
CORPUS = load_corpus()
# Generous: a compile takes ~1 s on a quiet 2-core box but 10x that when the box is shared.
OPTIONS = SandboxOptions(timeout_s=240, memory_limit_mb=1024)


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(num_workers=2, options=OPTIONS) as pool:
        yield pool


@pytest.fixture(scope="module")
def corpus_verdicts(pool):
    return validate_corpus(pool, CORPUS)


@pytest.mark.parametrize("item", CORPUS, ids=lambda p: p.name)
def test_corpus_gets_its_category(item, corpus_verdicts):
    verdict = corpus_verdicts[item.name]
    assert outcome(verdict) == item.expect, (
        f"{item.name}: {verdict.stage} {verdict.category} {verdict.message}"
    )


def test_good_programs_report_shapes_timings_and_checks(corpus_verdicts):
    verdict = corpus_verdicts["good_conv_gelu"]
    assert verdict.ok and verdict.stage == "done"
    assert verdict.input_shapes == [[2, 3, 10, 10]]
    assert verdict.output_shapes == [[2, 6, 7, 7]]
    for key in ("load", "init", "eager", "degenerate", "compile", "compare", "static", "total"):
        assert key in verdict.timings
    checks = verdict.checks
    assert checks["num_params"] == 3 * 6 * 9 + 6 + 6 * 3
    assert checks["flops"] > 0 and checks["graph_count"] >= 1 and checks["graph_breaks"] == 0
    assert 0 <= checks["max_abs_err"] < 1e-3
    assert verdict.seconds > 0


def test_a_graphs_cpp_kernels_are_built_in_one_gxx_run(corpus_verdicts):
    # Linear -> LayerNorm/ReLU -> Linear -> log_softmax/sigmoid: two fused C++ kernels around the matmuls.
    checks = corpus_verdicts["good_linear_softmax"].checks
    assert checks["cpp_kernels"] >= 2 and checks["cpp_builds"] == 1


def test_runtime_failures_say_where(corpus_verdicts):
    timeout = corpus_verdicts["infinite_loop"]
    assert timeout.stage == "eager" and "6 s" in timeout.message
    assert corpus_verdicts["init_error"].stage == "init"
    assert "out_features" in corpus_verdicts["init_error"].message
    assert "program line" in corpus_verdicts["eager_error"].message
    assert corpus_verdicts["eager_error"].checks["exception_type"] == "RuntimeError"
    assert "conv.bias" in corpus_verdicts["dead_parameter"].message
    assert "expected [[4, 16]]" in corpus_verdicts["shape_mismatch"].message
    assert "can't allocate memory" in corpus_verdicts["huge_allocation"].message


def test_nothing_escaped(corpus_verdicts):
    assert not glob.glob(ESCAPE_MARKER_GLOB)


def test_probe_reports_exception_without_compiling(pool):
    broken = next(item for item in CORPUS if item.name == "eager_error")
    verdict = pool.probe(broken.job()).result()
    assert not verdict.ok and verdict.category == "eager_error"
    assert verdict.checks["exception_type"] == "RuntimeError"
    assert "mat1 and mat2 shapes cannot be multiplied" in verdict.checks["exception_message"]
    good = next(item for item in CORPUS if item.name == "good_linear_softmax")
    verdict = pool.probe(good.job()).result()
    assert verdict.ok and verdict.output_shapes == [[4, 12]]
    assert "compile" not in verdict.timings
    unsafe = next(item for item in CORPUS if item.name == "os_system")
    assert pool.probe(unsafe.job()).result().category == "unsafe_code"  # probes are vetted too


def _compose(count: int, seed: int = 11) -> list:
    from synth_modules.backends.builtin import BuiltinBackend
    from synth_modules.config import GeneratorConfig
    from synth_modules.sampling import UniformSampler
    from synth_modules.types import GenerationRequest

    config = GeneratorConfig(seed=seed)
    backend, sampler = BuiltinBackend(config), UniformSampler(config)
    generations = []
    index = 0
    while len(generations) < count and index < 10 * count:
        sample = sampler.sample(index)
        index += 1
        try:
            generations.append(
                asyncio.run(backend.generate(GenerationRequest(sample=sample, entry_point="")))
            )
        except Exception:  # composer failures are the composer's tests' business
            continue
    return generations


@pytest.mark.slow
def test_accepted_programs_pass_validate_again_in_a_fresh_process(pool, tmp_path):
    """What the pool accepts, `synth-torch validate` (a new process, new pool) accepts too."""
    generations = _compose(4)
    futures = [
        pool.submit(
            ValidationJob(
                id=g.entry_point,
                source=g.source,
                entry_point=g.entry_point,
                expected_output_shapes=g.expected_output_shapes,
            )
        )
        for g in generations
    ]
    accepted = [g for g, f in zip(generations, futures, strict=True) if f.result().ok]
    assert accepted, [f.result().message for f in futures]
    for g in accepted:
        (tmp_path / f"{g.entry_point}.py").write_text(g.source)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "synth_modules.cli.validate", str(tmp_path), "--json", "--workers", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(rows) == len(accepted)
    for row in rows:
        assert set(row) == {"path", "ok", "stage", "category", "message", "seconds"}
        assert row["ok"] and row["category"] is None
