"""Read current torch / einops error messages and propose changed forward inputs.

Each rule turns one family of messages (matmul size mismatch, conv channels, rank, layer-norm shape, einops
axis divisibility, broadcast mismatch, index dtype...) into candidate input shapes, best first. The messages are
those of torch 2.x (`mat1 and mat2 shapes cannot be multiplied`, not the pre-1.7 `size mismatch, m1:`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from github_index.guesses import SEQ_LEN, TensorSpec

Specs = list[TensorSpec]


def _copy(specs: Specs) -> Specs:
    return [TensorSpec(list(s.shape), s.kind, s.high) for s in specs]


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"-?\d+", text)]


def _float_index(specs: Specs) -> int:
    for i, spec in enumerate(specs):
        if spec.kind == "float":
            return i
    return 0


def with_rank(shape: list[int], rank: int, conv_like: bool) -> list[int]:
    """Change a shape's rank, keeping the batch and channel (conv) or feature (linear) dimension."""
    if rank <= 0:
        return shape
    if rank == 1:
        return [shape[-1]]
    batch = shape[0]
    if conv_like:
        channel = shape[1] if len(shape) > 1 else shape[-1]
        spatial = max(shape[2:], default=16) if len(shape) > 2 else 16
        return [batch, channel, *([spatial] * (rank - 2))]
    feature = shape[-1]
    middle = shape[1:-1] or [SEQ_LEN]
    while len(middle) < rank - 2:
        middle = [*middle, middle[-1]]
    return [batch, *middle[: rank - 2], feature]


def _set_rank(specs: Specs, rank: int, conv_first: bool) -> list[Specs]:
    i = _float_index(specs)
    out = []
    for conv_like in (conv_first, not conv_first):
        new = _copy(specs)
        new[i].shape = with_rank(specs[i].shape, rank, conv_like)
        out.append(new)
    return out


def _shift_rank(specs: Specs, expected: int, received: int) -> list[Specs]:
    """A tensor inside the model had rank `received` where `expected` was needed: shift the input's rank."""
    i = _float_index(specs)
    rank = len(specs[i].shape) + expected - received
    if rank < 1 or rank == len(specs[i].shape):
        return _set_rank(specs, expected, conv_first=expected >= 4)
    return _set_rank(specs, rank, conv_first=rank >= 4)


def _conv_rank(m: re.Match, specs: Specs) -> list[Specs]:
    expected, received = int(m.group(1)), len(_ints(m.group(3)))
    return _shift_rank(specs, expected, received)


def _replace_dim_value(specs: Specs, old: int, new_value: int) -> list[Specs]:
    """Every input dimension equal to `old` (last ones first) set to `new_value`, one candidate each."""
    out = []
    for i, spec in enumerate(specs):
        for d in range(len(spec.shape) - 1, -1, -1):
            if spec.shape[d] == old and not (d == 0 and len(spec.shape) > 1):
                new = _copy(specs)
                new[i].shape[d] = new_value
                out.append(new)
    if not out:
        new = _copy(specs)
        i = _float_index(specs)
        if new[i].shape:
            new[i].shape[-1] = new_value
            out.append(new)
    return out


def _matmul(m: re.Match, specs: Specs) -> list[Specs]:
    _, inner, expected, _ = (int(g) for g in m.groups())
    out = []
    for i, spec in enumerate(specs):
        if spec.kind != "float":
            continue
        if spec.shape and spec.shape[-1] == inner:
            new = _copy(specs)
            new[i].shape[-1] = expected
            out.append(new)
        elif len(spec.shape) > 2 and math.prod(spec.shape[1:]) == inner:
            new = _copy(specs)
            new[i].shape = [spec.shape[0], expected]
            out.append(new)
    return out + _replace_dim_value(specs, inner, expected)


def _channels(m: re.Match, specs: Specs) -> list[Specs]:
    given, expected = _ints(m.group(1)), int(m.group(2))
    out = []
    for i, spec in enumerate(specs):
        if spec.shape == given or (len(spec.shape) == len(given) + 1 and spec.shape[1:] == given):
            new = _copy(specs)
            new[i].shape[1 if spec.shape == given else 2] = expected
            out.append(new)
    if not out:
        new = _copy(specs)
        i = _float_index(specs)
        if len(new[i].shape) > 1:
            new[i].shape[1] = expected
            out.append(new)
    return out


def _layer_norm(m: re.Match, specs: Specs) -> list[Specs]:
    normalized, got = _ints(m.group(1)), _ints(m.group(2))
    out = []
    for i, spec in enumerate(specs):
        if spec.shape == got:
            new = _copy(specs)
            if len(got) > len(normalized):
                new[i].shape = got[: len(got) - len(normalized)] + normalized
            else:
                new[i].shape = [got[0], SEQ_LEN, *normalized][-max(len(got), len(normalized) + 1) :]
            out.append(new)
    return out or _replace_dim_value(specs, got[-1], normalized[-1])


def _divide(m: re.Match, specs: Specs) -> list[Specs]:
    length, chunk = int(m.group(1)), int(m.group(2))
    target = chunk * max(1, math.ceil(length / chunk))
    alternatives = _replace_dim_value(specs, length, target)
    if target != chunk:
        alternatives += _replace_dim_value(specs, length, chunk)
    return alternatives


def _swap(m: re.Match, specs: Specs) -> list[Specs]:
    a, b = int(m.group(1)), int(m.group(2))
    return _replace_dim_value(specs, a, b) + _replace_dim_value(specs, b, a)


def _swap_reversed(m: re.Match, specs: Specs) -> list[Specs]:
    expected, got = int(m.group(1)), int(m.group(2))
    return _replace_dim_value(specs, got, expected) + _replace_dim_value(specs, expected, got)


def _to_int(_m: re.Match, specs: Specs) -> list[Specs]:
    out = []
    for i, spec in enumerate(specs):
        if spec.kind == "float":
            new = _copy(specs)
            new[i].kind, new[i].high = "int", 4
            out.append(new)
    return out


def _to_float(_m: re.Match, specs: Specs) -> list[Specs]:
    out = []
    for i, spec in enumerate(specs):
        if spec.kind != "float":
            new = _copy(specs)
            new[i].kind = "float"
            out.append(new)
    return out


def _smaller_ints(_m: re.Match, specs: Specs) -> list[Specs]:
    new = _copy(specs)
    changed = False
    for spec in new:
        if spec.kind == "int" and spec.high > 2:
            spec.high, changed = 2, True
    return [new] if changed else []


def _grow_spatial(_m: re.Match, specs: Specs) -> list[Specs]:
    new = _copy(specs)
    i = _float_index(specs)
    shape = new[i].shape
    if len(shape) < 3:
        return []
    new[i].shape = [*shape[:2], *(min(4 * d, 256) for d in shape[2:])]
    return [new]


def _reshape_target(m: re.Match, specs: Specs) -> list[Specs]:
    target = _ints(m.group(1))
    if -1 in target or not target:
        return []
    new = _copy(specs)
    new[_float_index(specs)].shape = target
    return [new]


def _unpack_rank(m: re.Match, specs: Specs, line: str) -> list[Specs]:
    if not re.search(r"shape|size\(|\.size|dim", line):
        return []
    return _set_rank(specs, int(m.group(1)), conv_first=True)


_RULES: list[tuple[re.Pattern[str], Callable[..., list[Specs]]]] = [
    (re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"), _matmul),
    (re.compile(r"expected input\[([\d, ]+)\] to have (\d+) channels"), _channels),
    (
        re.compile(
            r"Expected \d+D \(unbatched\) or (\d+)D \(batched\) input to (\w+), but got input of size: \[([\d, ]+)\]"
        ),
        _conv_rank,
    ),
    (
        re.compile(r"expected (\d+)D or (\d+)D input \(got \d+D input\)"),
        lambda m, s: _set_rank(s, int(m.group(2)), True) + _set_rank(s, int(m.group(1)), True),
    ),
    (
        re.compile(r"expected (\d+)D input \(got \d+D input\)"),
        lambda m, s: _set_rank(s, int(m.group(1)), True),
    ),
    (
        re.compile(
            r"normalized_shape=\[([\d, ]+)\], expected input with shape \[\*,?\s*[\d, ]+\], but got input of size\s*\[([\d, ]+)\]"
        ),
        _layer_norm,
    ),
    (re.compile(r"running_mean should contain (\d+) elements not (\d+)"), _swap_reversed),
    (
        re.compile(r"[Ww]rong shape: expected (\d+) dims?\. Received (\d+)-dim tensor"),
        lambda m, s: _shift_rank(s, int(m.group(1)), int(m.group(2))),
    ),
    (re.compile(r"can't divide axis of length (\d+) in chunks of (\d+)"), _divide),
    (re.compile(r"Shape mismatch, (\d+) != (\d+)"), _swap),
    (
        re.compile(r"Dimension out of range \(expected to be in range of \[-(\d+), \d+\], but got (-?\d+)\)"),
        lambda m, s: _shift_rank(s, abs(int(m.group(2))) + (int(m.group(2)) >= 0), int(m.group(1))),
    ),
    (re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)"), _swap),
    (re.compile(r"Expected size (\d+) but got size (\d+)"), _swap_reversed),
    (re.compile(r"[Ee]xpected (\d+) .*but (?:got|received) (\d+)"), _swap_reversed),
    (re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size \d+"), _reshape_target),
    (
        re.compile(
            r"scalar types: Long, Int|tensors used as indices must be long|expected scalar type Long|must be Long|one of the following scalar types: Long"
        ),
        _to_int,
    ),
    (re.compile(r"index out of range in self|index -?\d+ is out of bounds"), _smaller_ints),
    (
        re.compile(
            r"can't be cast to the desired output type Long|not implemented for 'Long'|not implemented for 'Int'"
        ),
        _to_float,
    ),
    (
        re.compile(
            r"Kernel size can't be greater|Output size is too small|smaller than kernel size|Padding size should be less|padded input size per channel"
        ),
        _grow_spatial,
    ),
]


def input_fixes(message: str, specs: Specs, line: str = "") -> list[Specs]:
    """Candidate input changes suggested by an error message, best first (may be empty)."""
    out: list[Specs] = []
    for pattern, rule in _RULES:
        match = pattern.search(message)
        if match:
            out += rule(match, specs)
    unpack = re.search(r"(?:too many|not enough) values to unpack \(expected (\d+)", message)
    if unpack:
        out += _unpack_rank(unpack, specs, line)
    return out


def rank_fallbacks(specs: Specs) -> list[Specs]:
    """Generic shapes to try when no message rule helps: other ranks of the main input."""
    out: list[Specs] = []
    for rank in (3, 4, 2, 5):
        out += _set_rank(specs, rank, conv_first=rank >= 4)
    return out
