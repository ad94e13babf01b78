"""One normalized op vocabulary for code, catalog names and KernelBench names.

Module, functional, method and operator spellings of the same computation collapse to one token
(`nn.ReLU`, `torch.relu`, `F.relu`, `x.relu_()` -> `relu`), so the contamination filter compares what programs
compute rather than how they spell it. Shape-only ops (view, flatten, dropout, ...) normalize to None: a lookalike
must not escape the filter by adding a reshape.
"""

from __future__ import annotations

import re

_NON_ALNUM = re.compile(r"[^a-z0-9]")

# Problem-name words whose meaning differs from the lower-case function of the same spelling: KernelBench's
# "Sum" in a name is a bias or residual add, while `torch.sum` is a reduction.
_NAME_WORDS: dict[str, str] = {
    "Sum": "add",
    "Add": "add",
    "BiasAdd": "add",
    "ResidualAdd": "add",
    "Scale": "mul",
    "Scaling": "mul",
    "Multiply": "mul",
    "Divide": "div",
    "Subtract": "sub",
    "Max": "max",
    "Min": "min",
    "Mean": "mean",
}

_GROUPS: dict[str, tuple[str, ...]] = {
    "linear": (
        "linear",
        "lazylinear",
        "gemm",
        "matmul",
        "bmm",
        "mm",
        "mv",
        "addmm",
        "addbmm",
        "baddbmm",
        "einsum",
        "matmult",
    ),
    "add": ("add", "biasadd", "residualadd", "iadd", "radd"),
    "sub": ("sub", "subtract", "rsub", "isub"),
    "mul": ("mul", "multiply", "scaling", "imul", "rmul"),
    "div": ("div", "divide", "truediv", "floordiv", "itruediv", "rdiv"),
    "neg": ("neg", "negative"),
    "swish": ("silu", "swish"),
    "clamp": ("clamp", "clip", "clampmin", "clampmax", "hardtanh", "relu6"),
    "sigmoid": ("sigmoid", "expit"),
    "gelu": ("gelu", "mingptnewgelu", "newgelu"),
    "batchnorm": (
        "batchnorm",
        "batchnorm1d",
        "batchnorm2d",
        "batchnorm3d",
        "lazybatchnorm1d",
        "lazybatchnorm2d",
    ),
    "instancenorm": ("instancenorm", "instancenorm1d", "instancenorm2d", "instancenorm3d"),
    "mean": (
        "mean",
        "nanmean",
        "globalavgpool",
        "adaptiveavgpool1d",
        "adaptiveavgpool2d",
        "adaptiveavgpool3d",
    ),
    # torch.max / torch.min are reductions or, given two tensors, element-wise: KernelBench uses both meanings
    "max": ("max", "amax", "maximum", "fmax", "adaptivemaxpool1d", "adaptivemaxpool2d", "adaptivemaxpool3d"),
    "min": ("min", "amin", "minimum", "fmin"),
    "sum": ("sum", "nansum"),
    "norm": ("norm", "frobeniusnorm", "vectornorm", "matrixnorm"),
    "normalize": ("normalize", "l2norm"),
    "interpolate": ("interpolate", "upsample", "upsamplingnearest2d", "upsamplingbilinear2d"),
    "pad": (
        "pad",
        "zeropad1d",
        "zeropad2d",
        "zeropad3d",
        "constantpad1d",
        "constantpad2d",
        "constantpad3d",
        "reflectionpad1d",
        "reflectionpad2d",
        "reflectionpad3d",
        "replicationpad1d",
        "replicationpad2d",
        "replicationpad3d",
        "circularpad1d",
        "circularpad2d",
        "circularpad3d",
    ),
    "cat": ("cat", "concat", "concatenate", "stack"),
    "convtranspose1d": ("convtranspose1d", "lazyconvtranspose1d"),
    "convtranspose2d": ("convtranspose2d", "lazyconvtranspose2d"),
    "convtranspose3d": ("convtranspose3d", "lazyconvtranspose3d"),
    "conv1d": ("conv1d", "lazyconv1d"),
    "conv2d": ("conv2d", "lazyconv2d"),
    "conv3d": ("conv3d", "lazyconv3d"),
    "smoothl1loss": ("smoothl1loss", "huberloss"),
    "crossentropyloss": ("crossentropyloss", "crossentropy"),
    "kldivloss": ("kldivloss", "kldiv"),
    "mseloss": ("mseloss",),
    "pow": ("pow", "square", "ipow"),
    "softmax": ("softmax", "softmax2d"),
}

# Ops that only move, view, copy or construct data: they are not part of a program's computation.
SHAPE_ONLY: frozenset[str] = frozenset(
    {
        "view",
        "viewas",
        "reshape",
        "reshapeas",
        "flatten",
        "unflatten",
        "squeeze",
        "unsqueeze",
        "permute",
        "transpose",
        "t",
        "mt",
        "swapaxes",
        "swapdims",
        "movedim",
        "contiguous",
        "expand",
        "expandas",
        "repeat",
        "tile",
        "flip",
        "fliplr",
        "flipud",
        "narrow",
        "select",
        "split",
        "chunk",
        "unbind",
        "getitem",
        "clone",
        "detach",
        "to",
        "float",
        "double",
        "half",
        "bfloat16",
        "type",
        "typeas",
        "cpu",
        "cuda",
        "identity",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "alphadropout",
        "featurealphadropout",
        "tensor",
        "astensor",
        "ones",
        "oneslike",
        "zeros",
        "zeroslike",
        "full",
        "fulllike",
        "empty",
        "emptylike",
        "rand",
        "randn",
        "randlike",
        "randnlike",
        "arange",
        "linspace",
        "eye",
        "diag",
        "size",
        "dim",
        "numel",
        "item",
        "tolist",
        "requiresgrad",
    }
)

_ALIASES: dict[str, str] = {alias: canon for canon, aliases in _GROUPS.items() for alias in aliases}


def squash(name: str) -> str:
    """The spelling-independent key of an op name: last dotted part, lower-case, no `_`, no in-place suffix."""
    return _NON_ALNUM.sub("", name.rsplit(".", 1)[-1].lower())


def normalize_op(name: str) -> str | None:
    """Canonical token for an op spelled any way, or None for shape-only ops.

    Accepts code spellings (`nn.Conv2d`, `torch.relu`, `F.relu`, `Tensor.mean`, `add`), catalog names
    (`Conv2d`, `ReLU`, `logsumexp`) and KernelBench problem-name words (`Gemm`, `BiasAdd`, `Swish`, `Conv2D`).
    """
    last = name.rsplit(".", 1)[-1]
    if last in _NAME_WORDS:
        return _NAME_WORDS[last]
    key = squash(name)
    if not key or key in SHAPE_ONLY:
        return None
    return _ALIASES.get(key, key)


def normalize_ops(names: list[str]) -> list[str]:
    """Normalize a sequence, dropping shape-only ops."""
    return [op for op in (normalize_op(name) for name in names) if op is not None]
