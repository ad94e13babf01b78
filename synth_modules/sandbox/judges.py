"""What validation's child judges with: references bound before any program exists, and the tensors it takes.

The checks run in the same process as the program (a forked child), so a program that replaces
`torch.compile` or the sandbox's own comparison could forge its verdict. `JUDGES` holds the references the
child calls, bound when this module is imported (in the warm worker, before any program exists), so such a
replacement does not reach the judge; `integrity.Snapshot` is what then reports it (a separate job: binding
keeps the originals in use, the snapshot detects the change). A tensor subclass handed to the judge could
answer every torch call made on it (`__torch_function__`), so only `PLAIN_TENSOR_TYPES` are judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from synth_modules.sandbox import compare

PLAIN_TENSOR_TYPES: tuple[type, ...] = (torch.Tensor, torch.nn.Parameter)


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

    return Judges(
        compile=torch.compile,
        manual_seed=torch.manual_seed,
        no_grad=torch.no_grad,
        lookup_backend=torch._dynamo.lookup_backend,
        compare=compare.compare,
        identical=compare.identical,
        flatten_outputs=compare.flatten_outputs,
    )


JUDGES = _bind()


def foreign_tensor(values: Iterable[Any]) -> str | None:
    """Why a tensor handed to the judge is refused (a subclass), or None when all are plain tensors."""
    for index, value in enumerate(values):
        if isinstance(value, torch.Tensor) and type(value) not in PLAIN_TENSOR_TYPES:
            return f"tensor {index} is a {type(value).__name__}, a torch.Tensor subclass the judge refuses"
    return None
