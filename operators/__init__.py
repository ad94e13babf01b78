"""The operator catalog: every op the generator can sample, with the metadata the composer, prompts and checks need.

    from operators import CATALOG, get, core_ops, compound_ops, supporting_ops
    get("Conv2d").prompt_hint
    [op.name for op in core_ops()]          # sampleable core ops (unsupported ones left out)

Canonical names: the nn class name for module ops ("Conv2d", "ReLU", "BatchNorm2d", "LSTM"), a lower-case
function name for functional/arithmetic ops ("logsumexp", "add", "matmul", "einsum"). `canonical_name` also
resolves common aliases ("relu", "F.gelu", "torch.softmax", "nn.Conv2d", "Gemm", "BiasAdd").
"""

from __future__ import annotations

import re

from operators.compound import COMPOUND_OPS
from operators.core import CORE_OPS
from operators.spec import Effect, InductorSupport, Kind, Operand, OpSpec, ParamSpec, Values
from operators.supporting import SUPPORTING_OPS

__all__ = [
    "CATALOG",
    "Effect",
    "InductorSupport",
    "Kind",
    "OpSpec",
    "Operand",
    "ParamSpec",
    "Values",
    "all_ops",
    "canonical_name",
    "compound_ops",
    "core_ops",
    "get",
    "supporting_ops",
]


def _build() -> dict[str, OpSpec]:
    catalog: dict[str, OpSpec] = {}
    for op in (*CORE_OPS, *COMPOUND_OPS, *SUPPORTING_OPS):
        if op.name in catalog:
            raise ValueError(f"duplicate op name {op.name}")
        catalog[op.name] = op
    return catalog


CATALOG: dict[str, OpSpec] = _build()

_PREFIX = re.compile(r"^(torch\.nn\.functional\.|torch\.nn\.|torch\.|nn\.|F\.|Tensor\.)")


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for op in CATALOG.values():
        for alias in (op.name, *op.aliases):
            table.setdefault(alias.lower(), op.name)
    for op in CATALOG.values():  # exact canonical names always win over another op's alias
        table[op.name.lower()] = op.name
    return table


_ALIASES = _alias_table()


def canonical_name(name: str) -> str | None:
    """The catalog name for `name` (case-insensitive, with or without torch./nn./F. prefix), or None."""
    if name in CATALOG:
        return name
    bare = _PREFIX.sub("", name.strip())
    return _ALIASES.get(bare.lower())


def get(name: str) -> OpSpec:
    """The OpSpec for a canonical name or alias; KeyError for an unknown op."""
    canonical = canonical_name(name)
    if canonical is None:
        raise KeyError(f"unknown op {name!r}")
    return CATALOG[canonical]


def all_ops(kind: Kind | str | None = None, *, include_unsupported: bool = True) -> list[OpSpec]:
    ops = [op for op in CATALOG.values() if kind is None or op.kind == Kind(kind)]
    return [op for op in ops if include_unsupported or op.sampleable]


def core_ops(include_unsupported: bool = False) -> list[OpSpec]:
    return all_ops(Kind.CORE, include_unsupported=include_unsupported)


def compound_ops(include_unsupported: bool = False) -> list[OpSpec]:
    return all_ops(Kind.COMPOUND, include_unsupported=include_unsupported)


def supporting_ops(include_unsupported: bool = False) -> list[OpSpec]:
    return all_ops(Kind.SUPPORTING, include_unsupported=include_unsupported)
