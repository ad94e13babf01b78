"""The program file contract: entry-point naming, AST-based class renaming, hashing.

A program file is `<EntryPoint>.py` holding one `class <EntryPoint>(nn.Module)` plus module-level
`get_inputs()` and `get_init_inputs()` (KernelBook convention: `[args_list, kwargs_dict]`).
"""

from __future__ import annotations

import ast
import hashlib
import re
from typing import Any

ENTRY_PREFIX = "SynthModel"
_MAX_NAME_OPS = 6
_IDENT = re.compile(r"[^0-9A-Za-z]+")


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _op_token(op: str) -> str:
    """`nn.Conv2d` -> `Conv2d`, `F.gelu` -> `Gelu`, `torch.logsumexp` -> `Logsumexp`."""
    last = op.split(".")[-1]
    token = "".join(part[:1].upper() + part[1:] for part in _IDENT.split(last) if part)
    return token or "Op"


def make_entry_point(pattern: list[str], sample_id: str) -> str:
    """Deterministic class name from the ops used and the sample id, e.g. SynthModel_Conv2d_Mish_1a2b3c4d."""
    tokens: list[str] = []
    for op in pattern:
        token = _op_token(op)
        if not tokens or tokens[-1] != token:
            tokens.append(token)
    tokens = tokens[:_MAX_NAME_OPS]
    return "_".join([ENTRY_PREFIX, *tokens, short_hash(sample_id)])


def _is_module_base(base: ast.expr) -> bool:
    text = ast.unparse(base)
    return text in {"nn.Module", "torch.nn.Module", "Module"}


def find_module_classes(tree: ast.Module) -> list[ast.ClassDef]:
    """Top-level classes deriving from nn.Module."""
    return [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and any(_is_module_base(base) for base in node.bases)
    ]


def _line_offsets(source: str) -> list[int]:
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def rename_class(source: str, old: str, new: str) -> str:
    """Rename class `old` to `new` everywhere it is referenced, using AST positions (never text search).

    Only the class definition's name and `Name` nodes that load it are rewritten, so strings, comments and
    identifiers that merely contain the old name are untouched.
    """
    if old == new:
        return source
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    offsets = _line_offsets(source)
    edits: list[tuple[int, int]] = []  # (absolute start, length)

    def byte_col_to_char(lineno: int, col: int) -> int:
        line = lines[lineno - 1]
        return len(line.encode()[:col].decode(errors="ignore"))

    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == old:
            line_no = node.lineno
            # Decorators shift lineno to the `class` line already; find the name token on that line.
            line = lines[line_no - 1]
            match = re.search(r"\bclass\s+(" + re.escape(old) + r")\b", line)
            if match is None:
                raise ValueError(f"cannot locate class {old} definition")
            edits.append((offsets[line_no - 1] + match.start(1), len(old)))
        elif isinstance(node, ast.Name) and node.id == old:
            start = offsets[node.lineno - 1] + byte_col_to_char(node.lineno, node.col_offset)
            edits.append((start, len(old)))
    out = source
    for start, length in sorted(set(edits), reverse=True):
        out = out[:start] + new + out[start + length :]
    ast.parse(out)  # the rewrite must still parse
    return out


def normalized_source_hash(source: str) -> str:
    """Hash of the AST dump (formatting and comments ignored)."""
    try:
        dump = ast.dump(ast.parse(source), annotate_fields=False, include_attributes=False)
    except SyntaxError:
        dump = source
    return hashlib.sha256(dump.encode()).hexdigest()


def split_init_inputs(value: Any) -> tuple[list[Any], dict[str, Any]]:
    """`[args, kwargs]` (KernelBook) or a flat list (KernelBench): sandbox and exporters read it alike."""
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[0], (list, tuple))
        and isinstance(value[1], dict)
    ):
        return list(value[0]), dict(value[1])
    if isinstance(value, (list, tuple)):
        return list(value), {}
    raise TypeError(f"get_init_inputs() returned {type(value).__name__}, expected [args, kwargs]")


_FLOAT_DTYPES = {"float32", "float", "bfloat16", "float16", "half", "float64", "double"}
_DTYPE_ALIASES = {"float": "float32", "half": "float16", "double": "float64"}


def declared_dtype(source: str) -> str:
    """The dtype a program states (module-level `dtype = torch.bfloat16`); float32, PyTorch's default, if none."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "float32"
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "dtype"
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "torch"
            and node.value.attr in _FLOAT_DTYPES
        ):
            return _DTYPE_ALIASES.get(node.value.attr, node.value.attr)
    return "float32"
