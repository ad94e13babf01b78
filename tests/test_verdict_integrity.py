"""Verdict integrity: the judge's functions are bound before a program runs and checked after; graph breaks
are gated; tensor subclasses never reach the judge."""

from __future__ import annotations

import pytest
import torch
from sandbox_corpus import load_corpus

from synth_modules.sandbox import SandboxOptions, SandboxPool, integrity

CORPUS = {item.name: item for item in load_corpus()}


def test_snapshot_names_a_replaced_function_and_a_patched_class(monkeypatch):
    before = integrity.snapshot()
    assert integrity.tampered(before) is None
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "frobnicate", lambda self: self, raising=False)
    message = integrity.tampered(before)
    assert message and "torch.allclose" in message and "Tensor.frobnicate (added)" in message


def test_a_compile_of_our_own_is_not_tampering():
    """Dynamo's lazy imports and first-compile patches happen without being counted as a program's."""
    before = integrity.snapshot()
    torch.compile(torch.nn.Linear(2, 2), backend="eager")(torch.ones(1, 2))
    assert integrity.tampered(before) is None


def test_judges_are_bound_to_the_real_functions():
    assert integrity.JUDGES.compile is torch.compile
    assert integrity.JUDGES.manual_seed is torch.manual_seed
    assert integrity.foreign_tensor([torch.ones(1), torch.nn.Parameter(torch.ones(1))]) is None
    assert "subclass" in integrity.foreign_tensor([torch.ones(1).as_subclass(type("T", (torch.Tensor,), {}))])


@pytest.fixture(scope="module")
def verdicts():
    """One pool, static checks off (so the runtime layer is what is tested), graph breaks allowed."""
    options = SandboxOptions(
        timeout_s=240, memory_limit_mb=2048, static_checks=False, allow_graph_breaks=True
    )
    jobs = {
        "graph_break": CORPUS["graph_break"].job(),
        "forge_allclose": CORPUS["forge_allclose"].job(),
        "forge_tensor_subclass": CORPUS["forge_tensor_subclass"].job(),
        "rnn_forward_not_compiled": CORPUS["rnn_forward_not_compiled"].job(),
    }
    with SandboxPool(num_workers=2, options=options) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow  # a warm-up plus real compiles
def test_graph_breaks_pass_when_allowed_and_are_counted(verdicts):
    verdict = verdicts["graph_break"]
    assert verdict.ok, verdict.message
    assert verdict.checks["graph_count"] >= 2


@pytest.mark.slow  # a warm-up plus real compiles
def test_a_forward_dynamo_skips_is_counted_as_no_graph(verdicts):
    """Rejected as graph_break by default (the corpus test); allowed here, and reported as 0 graphs."""
    verdict = verdicts["rnn_forward_not_compiled"]
    assert verdict.ok, verdict.message
    assert verdict.checks["graph_count"] == 0


@pytest.mark.slow  # a warm-up plus real compiles
def test_forgeries_fail_even_when_compile_and_compare_run(verdicts):
    forged = verdicts["forge_allclose"]
    assert forged.category == "unsafe_code" and "torch.allclose" in forged.message
    subclass = verdicts["forge_tensor_subclass"]
    assert subclass.category == "unsafe_code" and "Agreeable" in subclass.message


@pytest.mark.slow  # a warm-up plus real compiles
def test_fresh_interpreter_first_compile_is_not_tampering():
    """Without a warm-up the child's compile is the process's first: Dynamo's own patches must not count."""
    options = SandboxOptions(timeout_s=240, warm=False)
    good = CORPUS["good_linear_softmax"]
    with SandboxPool(num_workers=1, options=options) as pool:
        verdict = pool.submit(good.job()).result()
    assert verdict.ok, verdict.message
    assert verdict.checks["graph_count"] == 1


def test_graph_break_setting_reaches_the_sandbox():
    from github_index.cli import build_parser
    from github_index.evaluate import sandbox_options
    from synth_modules.config import GeneratorConfig
    from synth_modules.executors import sandbox_options as generator_sandbox_options

    assert generator_sandbox_options(GeneratorConfig()).allow_graph_breaks is False
    assert generator_sandbox_options(GeneratorConfig(allow_graph_breaks=True)).allow_graph_breaks is True
    assert build_parser().parse_args([]).allow_graph_breaks is True
    assert build_parser().parse_args(["--no-allow-graph-breaks"]).allow_graph_breaks is False
    assert sandbox_options().allow_graph_breaks is True and sandbox_options().static_policy == "repository"
    assert sandbox_options(allow_graph_breaks=False).allow_graph_breaks is False
