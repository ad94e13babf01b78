"""Verdict integrity: what the sandbox judges with is bound before a program runs and checked after it.

The checks run in the same process as the program (a forked child), so a program that replaces
`torch.allclose`, `Tensor.abs`, `nn.Module.__call__` or the sandbox's own comparison could forge its verdict.
`JUDGES` holds the references the child calls, bound when this module is imported (in the warm worker, before
any program exists); `snapshot()`, taken in the child just before the program is loaded, records the identity
of every watched attribute, and `tampered()` names those that differ afterwards. A change is `unsafe_code`. Static checks refuse such programs
already; this is the layer that holds when they are bypassed or wrong.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from synth_modules.sandbox import compare, degenerate

# Classes whose whole namespace is watched (a new `__eq__` or `__torch_function__` counts as a change).
WATCHED_CLASSES: tuple[type, ...] = (torch.Tensor, torch._C.TensorBase, torch.nn.Module, torch.nn.Parameter)
# Tensor types a program may hand to the judge: a subclass could intercept every torch call made on it.
PLAIN_TENSOR_TYPES: tuple[type, ...] = (torch.Tensor, torch.nn.Parameter)


def _watched_modules() -> list[types.ModuleType]:
    import builtins
    import math

    import torch.nn.functional
    import torch.random

    # builtins and math: the comparison's isinstance / len / float / max / isfinite are theirs
    return [builtins, math, torch, torch.random, torch.nn.functional, torch.nn.init, compare, degenerate]


@dataclass(frozen=True)
class Judges:
    """The functions the child judges with, as they were before any program ran."""

    compile: Callable[..., Any]
    manual_seed: Callable[[int], Any]
    no_grad: type
    lookup_backend: Callable[[str], Callable[..., Any]]
    compare: Callable[..., compare.Comparison]
    identical: Callable[..., bool]
    flatten_outputs: Callable[[Any], list[torch.Tensor]]


def _bind() -> Judges:
    import torch._dynamo
    from torch._dynamo import mutation_guard

    # Dynamo wraps nn.Module.__init__ / __setstate__ on its first compile; do it now, so that a child's first
    # compile (fresh-interpreter mode) is not mistaken for a program patching nn.Module.
    mutation_guard.install_generation_tagging_init()

    return Judges(
        compile=torch.compile,
        manual_seed=torch.manual_seed,
        no_grad=torch.no_grad,
        lookup_backend=torch._dynamo.lookup_backend,
        compare=compare.compare,
        identical=compare.identical,
        flatten_outputs=compare.flatten_outputs,
    )


class Snapshot:
    """Identities of the watched module attributes and class namespaces at one moment."""

    def __init__(self, modules: Iterable[types.ModuleType], classes: Iterable[type]):
        self.modules = {m.__name__: (m, {k: id(v) for k, v in vars(m).items()}) for m in modules}
        self.classes = {c.__qualname__: (c, {k: id(v) for k, v in vars(c).items()}) for c in classes}

    def changes(self) -> list[str]:
        """What differs from the snapshot: replaced or deleted module attributes (additions are normal: lazy
        submodule imports), and any replaced, deleted or added class attribute."""
        found = []
        for name, (module, before) in self.modules.items():
            now = vars(module)
            found += [f"{name}.{k}" for k, v in before.items() if k not in now or id(now[k]) != v]
        for name, (cls, before) in self.classes.items():
            now = vars(cls)
            found += [f"{name}.{k}" for k, v in before.items() if k not in now or id(now[k]) != v]
            found += [f"{name}.{k} (added)" for k in now if k not in before]
        return found


JUDGES = _bind()


def snapshot() -> Snapshot:
    """Taken in the child right before the program is loaded."""
    return Snapshot(_watched_modules(), WATCHED_CLASSES)


def tampered(before: Snapshot) -> str | None:
    """A message naming what a program replaced in the judge's modules and classes, or None."""
    changed = before.changes()
    if not changed:
        return None
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return f"program replaced what the sandbox judges with: {shown}"


def foreign_tensor(values: Iterable[Any]) -> str | None:
    """Why a tensor handed to the judge is refused (a subclass), or None when all are plain tensors."""
    for index, value in enumerate(values):
        if isinstance(value, torch.Tensor) and type(value) not in PLAIN_TENSOR_TYPES:
            return f"tensor {index} is a {type(value).__name__}, a torch.Tensor subclass the judge refuses"
    return None
