"""The operator catalog: coverage of the issue's op families, metadata every op must carry, shape functions that
agree with PyTorch, and name resolution."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

import operators
from operators import CATALOG, Kind, canonical_name, get

REQUIRED = {
    Kind.CORE: {
        "Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
        "ConvTranspose3d", "matmul", "bmm", "einsum",
    },
    Kind.COMPOUND: {
        "Embedding", "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "RNN", "LSTM",
        "GRU", "RNNCell", "LSTMCell", "GRUCell",
    },
    Kind.SUPPORTING: {
        "ReLU", "GELU", "add", "mul", "sub", "div", "clamp", "BatchNorm2d", "LayerNorm", "GroupNorm",
        "InstanceNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "ZeroPad2d",
        "ReflectionPad2d", "sum", "mean", "max", "min", "logsumexp", "Softmax", "LogSoftmax", "Flatten",
        "reshape", "permute", "transpose", "Upsample", "Dropout",
    },
}  # fmt: skip

SHAPES = [(4, 16), (2, 6, 20), (2, 4, 12, 10), (1, 3, 6, 8, 8), (3, 8, 16), (2, 16, 8, 8)]


def test_catalog_covers_the_issue_lists() -> None:
    for kind, names in REQUIRED.items():
        have = {op.name for op in operators.all_ops(kind)}
        assert names <= have, f"{kind}: missing {sorted(names - have)}"
    assert len(operators.supporting_ops()) >= 80


def test_every_op_carries_its_metadata() -> None:
    for name, op in CATALOG.items():
        assert op.name == name
        assert op.ranks and all(1 <= r <= 5 for r in op.ranks), name
        assert op.styles, f"{name} has no module or functional form"
        assert op.prompt_hint and "\n" not in op.prompt_hint, name
        assert op.inductor.status in {"native", "fallback", "unsupported"}
        if op.inductor.status != "native":
            assert len(op.inductor.reason) > 20, f"{name}: say why it is {op.inductor.status}"
        if op.module:
            assert hasattr(nn, op.module.removeprefix("nn.")), f"{name}: nn has no {op.module}"
        described = op.describe()
        assert described["name"] == name and described["kind"] == str(op.kind)


def test_canonical_names_follow_the_convention() -> None:
    for op in CATALOG.values():
        if op.module:
            assert op.name == op.module.removeprefix("nn."), op.name
        else:
            assert op.name == op.name.lower() or op.name.startswith("MaxUnpool"), op.name


def test_unsupported_ops_are_kept_but_not_sampleable() -> None:
    unsupported = [op for op in CATALOG.values() if op.inductor.status == "unsupported"]
    assert unsupported
    for op in unsupported:
        assert not op.sampleable
        assert op.name not in {o.name for o in operators.all_ops(include_unsupported=False)}
        assert op in operators.all_ops(op.kind)


def test_name_resolution() -> None:
    assert canonical_name("F.relu") == "ReLU"
    assert canonical_name("torch.relu") == "ReLU"
    assert canonical_name("nn.Conv2d") == "Conv2d"
    assert canonical_name("torch.nn.functional.gelu") == "GELU"
    assert canonical_name("softmax") == "Softmax"
    assert canonical_name("BiasAdd") == "add"
    assert canonical_name("Gemm") == "Linear"
    assert canonical_name("torch.logsumexp") == "logsumexp"
    assert canonical_name("no_such_op") is None
    assert get("F.max_pool2d").name == "MaxPool2d"
    with pytest.raises(KeyError):
        get("no_such_op")


def _module_output_shape(op: operators.OpSpec, shape: tuple[int, ...], args: dict) -> tuple[int, ...] | None:
    """Run the op's module form on a tensor of `shape` (None when the op needs more than a module call)."""
    if (
        op.module is None
        or op.operand is not None
        or op.input_dtype != "float"
        or "{y}" in op.call_form(args)
    ):
        return None
    visible = {k: v for k, v in args.items() if not k.startswith("_")}
    module = getattr(nn, op.module.removeprefix("nn."))(**visible).eval()
    call = op.call_form(args)
    with torch.no_grad():
        out = module(torch.randn(shape))
        if call.endswith("[0]"):
            out = out[0]
        if call.endswith("[0][:, -1]"):
            out = out[0][:, -1]
        if call == "{m}({x}, {m}({x}))":
            out = module(torch.randn(shape), out)
    return tuple(out.shape)


def test_shape_transfer_agrees_with_pytorch() -> None:
    """For module-style ops, the catalog's out_shape equals what PyTorch computes (many random args)."""
    rng = random.Random(0)
    torch.manual_seed(0)
    checked = set()
    for op in CATALOG.values():
        for shape in SHAPES:
            if len(shape) not in op.ranks:
                continue
            for _ in range(6):
                args = op.make_args(rng, shape)
                if args is None:
                    continue
                expected = tuple(op.out_shape(shape, args))
                got = _module_output_shape(op, shape, args)
                if got is None:
                    break
                assert got == expected, f"{op.name}{args} on {shape}: torch {got} != catalog {expected}"
                checked.add(op.name)
    assert len(checked) >= 60, sorted(checked)
