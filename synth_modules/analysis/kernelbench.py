"""KernelBench levels 1 and 2 as normalized op sequences (the reference the contamination filter matches).

The facts ship in synth_modules/data/kernelbench (problem names of the current and original releases, and the
level-2 forward op sequences) and are read with importlib.resources so an installed wheel finds them.

Level 1 problems are single ops named in prose ("conv_transposed_3D_square_input..."), mapped here by rules; a
few whose reference code is a short expression (RMSNorm, L1Norm, HingeLoss, ...) also get that expansion. Level 2
sequences come from the recorded forward ops; because KernelBench writes Swish, Mish and HardSwish out by hand
(`x * torch.sigmoid(x)`), every way of fusing those expansions back into one op is a variant of the problem too.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

from synth_modules.analysis.opnames import normalize_op, normalize_ops

RELEASES = {"current": "", "v0": "_v0"}
LEVELS = ("l1", "l2")

# Level-1 names -> normalized ops, first matching rule wins ({0} is the rule's first group).
_L1_RULES: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    (r"conv_depthwise_separable_(\d)d", (("conv{0}d", "conv{0}d"),)),
    (r"conv_(?:standard|depthwise|pointwise)_(\d)d", (("conv{0}d",),)),
    (r"conv_transposed_(\d)d", (("convtranspose{0}d",),)),
    (r"matrix_scalar", (("mul",),)),
    (r"matmul|matrix_multiplication|matrix_vector", (("linear",),)),
    (r"max_pooling_(\d)d", (("maxpool{0}d",),)),
    (r"average_pooling_(\d)d", (("avgpool{0}d",),)),
    (r"^product_reduction", (("prod",),)),
    (r"^(sum|mean|max|min)_reduction", (("{0}",),)),
    (r"^(argmax|argmin)_over", (("{0}",),)),
    (r"^masked_cumsum", (("mul", "cumsum"), ("cumsum",))),
    (r"^(cumsum|cumprod)", (("{0}",),)),
    (r"^rmsnorm", (("rmsnorm",), ("pow", "mean", "add", "sqrt", "div"))),
    (r"^l1norm", (("abs", "sum", "div"), ("abs", "mean", "div"))),
    (r"^(l2norm|frobeniusnorm)", (("norm", "div"), ("normalize",))),
    (r"^softsign", (("softsign",), ("abs", "add", "div"))),
    (r"^hingeloss", (("hingeloss",), ("mul", "sub", "clamp", "mean"))),
    (r"^cosinesimilarityloss", (("cosinesimilarity", "sub", "mean"),)),
    (r"^scaleddotproductattention", (("scaleddotproductattention",), ("linear", "softmax", "linear"))),
)

# Hand-written expansions KernelBench uses for ops that also exist as one call (normalized spelling).
_FUSIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("sigmoid", "mul"), "swish"),
    (("softplus", "tanh", "mul"), "mish"),
    (("add", "div", "clamp", "mul"), "hardswish"),
    (("add", "clamp", "div", "mul"), "hardswish"),
    (("add", "clamp", "mul", "div"), "hardswish"),
    (("add", "sigmoid", "mul", "div"), "hardswish"),
)
_MAX_VARIANTS = 64


@dataclass(frozen=True)
class KernelBenchProblem:
    """One KernelBench problem as the filter sees it."""

    level: str  # "l1" | "l2"
    name: str  # problem file name, e.g. "12_Gemm_Multiply_LeakyReLU.py"
    releases: tuple[str, ...]  # "current" and/or "v0"
    ops: tuple[str, ...]  # recorded forward ops (level 2); empty for level 1
    sequences: frozenset[tuple[str, ...]]  # normalized variants, any of which is a match


def _read(filename: str) -> str:
    folder = resources.files("synth_modules").joinpath("data").joinpath("kernelbench")
    return folder.joinpath(filename).read_text(encoding="utf-8")


def _stem(name: str) -> str:
    """`50_conv_standard_2D__square_input.py` -> `conv_standard_2D__square_input`."""
    return re.sub(r"^\d+_", "", name.removesuffix(".py"))


def level1_sequences(name: str) -> frozenset[tuple[str, ...]]:
    """Normalized op sequences of a level-1 problem, from its name."""
    stem = _stem(name)
    lowered = stem.lower()
    squashed = re.sub(r"[^a-z0-9]", "", lowered)
    for pattern, templates in _L1_RULES:
        match = re.search(pattern, lowered) or re.search(pattern, squashed)
        if match:
            groups = match.groups()
            return frozenset(tuple(op.format(*groups) for op in template) for template in templates)
    op = normalize_op(stem)
    return frozenset({(op,)}) if op else frozenset()


def fusion_variants(sequence: tuple[str, ...]) -> frozenset[tuple[str, ...]]:
    """The sequence plus every way of fusing hand-written Swish/Mish/HardSwish expansions into one op."""
    results: set[tuple[str, ...]] = set()

    def expand(position: int, prefix: tuple[str, ...]) -> None:
        if len(results) >= _MAX_VARIANTS:
            return
        if position == len(sequence):
            results.add(prefix)
            return
        expand(position + 1, (*prefix, sequence[position]))
        for pattern, fused in _FUSIONS:
            if sequence[position : position + len(pattern)] == pattern:
                expand(position + len(pattern), (*prefix, fused))

    expand(0, ())
    return frozenset(results)


def _merge(level: str, by_release: dict[str, dict[str, tuple[str, ...]]]) -> list[KernelBenchProblem]:
    """One problem per distinct (name, normalized sequences) across releases, remembering the releases."""
    merged: dict[tuple[str, frozenset[tuple[str, ...]]], tuple[tuple[str, ...], list[str]]] = {}
    for release, problems in by_release.items():
        for name, ops in problems.items():
            if level == "l1":
                sequences = level1_sequences(name)
            else:
                sequences = fusion_variants(tuple(normalize_ops(list(ops))))
            if sequences:
                merged.setdefault((name, sequences), (ops, []))[1].append(release)
    out = [
        KernelBenchProblem(level, name, tuple(releases), ops, sequences)
        for (name, sequences), (ops, releases) in merged.items()
    ]
    return sorted(out, key=lambda p: (int(p.name.split("_", 1)[0]), p.name, p.releases))


@functools.cache
def load_problems(level: str) -> tuple[KernelBenchProblem, ...]:
    """All problems of `level` ("l1" or "l2"), current and original releases merged."""
    if level not in LEVELS:
        raise ValueError(f"unknown KernelBench level {level!r}; choose from {LEVELS}")
    by_release: dict[str, dict[str, tuple[str, ...]]] = {}
    for release, suffix in RELEASES.items():
        if level == "l1":
            names = _read(f"kernelbench_level1_names{suffix}.txt").split()
            by_release[release] = {name: () for name in names}
        else:
            ops = json.loads(_read(f"kernelbench_level2_ops{suffix}.json"))
            by_release[release] = {name: tuple(seq) for name, seq in ops.items()}
    return tuple(_merge(level, by_release))
