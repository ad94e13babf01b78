"""Verdict integrity: the judge's functions are bound before a program runs and checked after; graph breaks
are gated; tensor subclasses never reach the judge."""

from __future__ import annotations

import pytest
import torch
from sandbox_corpus import load_corpus

from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob, integrity, judges, landlock

CORPUS = {item.name: item for item in load_corpus()}
# Each patch here was seen by only one of the two mechanisms the sandbox had before they became one: the clock
# and the thread by the service's, math.isfinite by validation's. Both paths now name all three.
CROSS_PATCH = """
import math
import threading
import time

import torch
import torch.nn as nn

time.perf_counter = lambda: 0.0
math.isfinite = lambda value: True
threading.Thread(target=threading.Event().wait, daemon=True).start()


class Model(nn.Module):
    def forward(self, x):
        raise RuntimeError("fails after patching its judge")


def get_inputs():
    return [torch.randn(2, 3)]


def get_init_inputs():
    return [[], {}]
"""


def _names_every_cross_patch(message: str) -> None:
    assert integrity.REPLACED in message, message
    assert "time.perf_counter" in message and "math.isfinite" in message, message
    assert f"1 thread(s) {integrity.LEFT_RUNNING}" in message, message


def test_snapshot_names_a_replaced_function_and_a_patched_class(monkeypatch):
    before = integrity.Snapshot.take()
    assert before.problems() == []
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "frobnicate", lambda self: self, raising=False)
    (message,) = before.problems()
    assert message.startswith(integrity.REPLACED)
    assert "torch.allclose" in message and "torch.Tensor.frobnicate (added)" in message


def test_snapshot_names_what_either_former_mechanism_alone_watched(monkeypatch):
    """One list: a clock (the service's old list only), an nn.Parameter method and a math function (validation's
    old list only), a deleted member, a module swapped in sys.modules and a thread are all caught."""
    import math
    import sys
    import threading
    import time
    import types

    before = integrity.Snapshot.take()
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)
    monkeypatch.setattr(torch.nn.Parameter, "__repr__", lambda self: "forged")
    monkeypatch.setattr(math, "isfinite", lambda x: True)
    monkeypatch.delattr(torch.nn.functional, "gelu")
    monkeypatch.setitem(sys.modules, "torch.testing", types.ModuleType("torch.testing"))
    changed = before.changed()
    for name in (
        "time.perf_counter",
        "torch.nn.Parameter.__repr__",
        "math.isfinite",
        "torch.nn.functional.gelu",
    ):
        assert name in changed, (name, changed)
    assert "torch.testing (replaced in sys.modules)" in changed
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert before.new_threads() == 1 and integrity.is_leftover(before.problems()[-1])
    finally:
        stop.set()
        thread.join()
    monkeypatch.undo()
    assert before.problems() == []


def test_a_plain_setting_counts_by_value(monkeypatch):
    """An equal value rebound (a recomputed float, NaN included) is no change; another value is."""
    import math

    monkeypatch.setattr(math, "nan", float("nan"))
    before = integrity.Snapshot.take()
    monkeypatch.setattr(math, "nan", float("nan"))
    assert before.changed() == []
    monkeypatch.setattr(math, "pi", 3.0)
    assert before.changed() == ["math.pi"]


def test_a_compile_of_our_own_is_not_tampering():
    """Dynamo's lazy imports and first-compile patches happen without being counted as a program's."""
    integrity.settle_torch()  # what validation's child and the service do before their snapshot
    before = integrity.Snapshot.take()
    torch.compile(torch.nn.Linear(2, 2), backend="eager")(torch.ones(1, 2))
    assert before.problems() == []


def test_judges_are_bound_to_the_real_functions():
    assert judges.JUDGES.compile is torch.compile
    assert judges.JUDGES.manual_seed is torch.manual_seed
    assert judges.foreign_tensor([torch.ones(1), torch.nn.Parameter(torch.ones(1))]) is None
    assert "subclass" in judges.foreign_tensor([torch.ones(1).as_subclass(type("T", (torch.Tensor,), {}))])


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
        "cross_patch": ValidationJob(id="cross_patch", source=CROSS_PATCH),
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
def test_validation_catches_what_only_the_service_used_to(verdicts):
    verdict = verdicts["cross_patch"]
    assert verdict.category == "unsafe_code"
    _names_every_cross_patch(verdict.message)


@pytest.mark.skipif(landlock.abi_version() < 6, reason="the service worker refuses without Landlock")
def test_the_service_catches_what_only_validation_used_to():
    from synth_modules.sandbox.spawn import spawn_isolated

    worker = spawn_isolated("synth_modules.export.worker", {"device": "cpu", "warmup": False})
    try:
        worker.wait_ready(timeout=300)
        answer = worker.call({"id": "cross", "source": CROSS_PATCH, "entry_point": "Model"}, 120)
        assert answer["reply"]["ok"] is False
        _names_every_cross_patch("; ".join(answer["integrity"]))
    finally:
        worker.close()


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
