"""github_index deduction: error-message rules on real torch errors, the search on fixture classes, isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from einops import rearrange
from torch import nn

from github_index.deduce import Deduction, deduce_many, render_program
from github_index.errors import input_fixes
from github_index.extract import extract_repo
from github_index.guesses import TensorSpec
from github_index.sources import RepoInfo
from synth_modules.sandbox import landlock

FIXTURES = Path(__file__).parent / "fixtures" / "github_repos"
UNSAFE = landlock.abi_version() == 0  # a CI kernel without Landlock: the sandbox runs only when told to


def _message(fn) -> str:
    try:
        fn()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("expected an error")


def _shapes(candidates: list[list[TensorSpec]]) -> list[list[list[int]]]:
    return [[spec.shape for spec in specs] for specs in candidates]


def test_matmul_mismatch_sets_the_feature_dimension():
    message = _message(lambda: nn.Linear(48, 4)(torch.rand(2, 8, 16)))
    assert "mat1 and mat2 shapes cannot be multiplied" in message
    assert [[2, 8, 48]] in _shapes(input_fixes(message, [TensorSpec([2, 8, 16])]))


def test_conv_channel_mismatch_sets_the_channel_dimension():
    message = _message(lambda: nn.Conv2d(3, 8, 3)(torch.rand(2, 4, 16, 16)))
    assert _shapes(input_fixes(message, [TensorSpec([2, 4, 16, 16])]))[0] == [[2, 3, 16, 16]]


def test_conv_rank_error_shifts_the_rank():
    message = _message(lambda: nn.Conv2d(3, 8, 3)(torch.rand(2, 3, 16, 16, 7)))
    assert [[2, 3, 16, 16]] in _shapes(input_fixes(message, [TensorSpec([2, 3, 16, 16, 7])]))


def test_layer_norm_and_einops_rank_messages():
    message = _message(lambda: nn.LayerNorm(16)(torch.rand(2, 8, 4)))
    assert [[2, 8, 16]] in _shapes(input_fixes(message, [TensorSpec([2, 8, 4])]))
    message = _message(lambda: rearrange(torch.rand(2, 8, 16, 3), "b n d -> b d n"))
    assert [[2, 8, 16]] in _shapes(input_fixes(message, [TensorSpec([2, 8, 16, 3])]))
    message = _message(lambda: rearrange(torch.rand(2, 10, 16), "b (n h) d -> b n h d", h=4))
    assert [[2, 12, 16]] in _shapes(input_fixes(message, [TensorSpec([2, 10, 16])]))


def test_index_dtype_and_broadcast_messages():
    message = _message(lambda: nn.Embedding(10, 4)(torch.rand(2, 8)))
    assert [spec.kind for spec in input_fixes(message, [TensorSpec([2, 8])])[0]] == ["int"]
    message = _message(lambda: torch.rand(2, 8, 16) + torch.rand(2, 8, 32))
    assert [[2, 8, 32]] in _shapes(input_fixes(message, [TensorSpec([2, 8, 16])]))


@pytest.fixture(scope="module")
def deduced():
    items = []
    for name in ("deduce_cases", "toy_models"):
        for item in extract_repo(RepoInfo(name, path=str(FIXTURES / name))).classes:
            items.append((item.class_name + ":" + item.path, item.source, item.entry_point))
    sources = {key: source for key, source, _ in items}
    results = dict(deduce_many(items, jobs=2, timeout_s=60, allow_unsandboxed=UNSAFE))
    return results, sources


@pytest.mark.parametrize(
    "key, init, inputs",
    [
        ("ConvAfterHead:cases.py", {}, "torch.rand([2, 3, "),
        ("FlattenLinear:cases.py", {}, None),
        ("TokensToImage:cases.py", {"dim": "16"}, None),
        ("HeadsDivide:cases.py", None, None),
        ("PairSize:cases.py", {"grid": "(4, 4)"}, None),
        ("Wrapped:cases.py", {"grid": "(4, 4)"}, None),
        ("ConfigHead:toy/config_model.py", None, None),
        ("TinyNet:toy/pretrained.py", None, None),
        ("OptionalTimm:toy/thirdparty.py", {"dim": "16"}, None),
    ],
)
def test_search_finds_working_arguments(deduced, key, init, inputs):
    results, sources = deduced
    result: Deduction = results[key]
    assert result.ok, (key, result.message, result.trace)
    if init is not None:
        assert result.init_kwargs == init
    if inputs is not None:
        assert result.inputs[0].startswith(inputs)
    # The rendered program really runs with what was deduced.
    namespace: dict = {}
    exec(compile(render_program(sources[key], result), key, "exec"), namespace)
    args, kwargs = namespace["get_init_inputs"]()
    model = next(v for k, v in namespace.items() if k.startswith(key.split(":")[0] + "_"))(*args, **kwargs)
    out = model(*namespace["get_inputs"]())
    assert isinstance(out, torch.Tensor) and out.numel() > 0


def test_specific_deductions(deduced):
    results, _ = deduced
    flat = results["FlattenLinear:cases.py"]
    assert torch.Size(eval(flat.inputs[0].replace("torch.rand", "torch.Size"))).numel() // 2 == 48
    assert "_mock_config({'hidden_size'" in results["ConfigHead:toy/config_model.py"].init_kwargs["config"]
    assert results["TinyNet:toy/pretrained.py"].init_kwargs["pretrained"] == "False"
    heads = results["HeadsDivide:cases.py"].init_kwargs
    assert int(heads["width"]) % int(heads["heads"]) == 0
    timm = results["UsesTimm:toy/thirdparty.py"]
    assert not timm.ok and timm.category == "import_error" and "timm.layers.DropPath" in timm.message


_CLASS = """
import os
import time
import torch
from torch import nn


class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        BODY

    def forward(self, x):
        return x * 2
"""
HOSTILE = {
    "hang": "time.sleep(60)",
    "crash": "os._exit(3)",
    "memory": "self.blob = bytearray(3 * 1024**3)",
    "secret": "raise RuntimeError(f\"env={sorted(k for k in os.environ if 'TOKEN' in k or 'KEY' in k)}\")",
    "escape": "open('/tmp/synth_sandbox_escape_deduce', 'w').write('x')",
    "ok": "self.fc = nn.Linear(4, 4)",
}


def test_deduction_runs_in_the_sandbox_and_contains_hangs_crashes_memory_and_escapes(monkeypatch):
    """Repository code runs only in a confined child: a hang, a crash, a memory blow-up, a secret read or a
    write outside costs that class only, with a category; the answer comes back as checked JSON."""
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-deduce-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-deduce-secret")
    items = [(name, _CLASS.replace("BODY", body), "Probe") for name, body in HOSTILE.items()]
    results = dict(deduce_many(items, jobs=2, timeout_s=5, memory_limit_mb=1024, allow_unsandboxed=UNSAFE))
    assert results["hang"].category == "timeout"
    assert results["crash"].category == "crash" and "code 3" in results["crash"].message
    assert results["memory"].category in ("memory_limit", "init_error")
    assert "MemoryError" in results["memory"].message or results["memory"].category == "memory_limit"
    assert not results["secret"].ok and "env=[]" in results["secret"].message
    assert not results["escape"].ok and not os.path.exists("/tmp/synth_sandbox_escape_deduce")
    assert results["ok"].ok and results["ok"].inputs and results["ok"].output_shapes
