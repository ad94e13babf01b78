"""Pull a program out of an LLM answer: the last fenced code block, its `Final Pattern: [...]` line, and the
model class renamed (through the AST) to the sample's entry point. See DESIGN.md, "Validation" step 1."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from synth_modules.program import find_module_classes, rename_class
from synth_modules.types import Category, GenerationError

# A fence opens with 3+ backticks or tildes (optionally indented) and closes with the same run on its own line.
_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.#-]*)[^\n]*\n(?P<body>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_OPEN_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.#-]*)[^\n]*\n", re.MULTILINE)
_FINAL_PATTERN = re.compile(r"final[ _-]?pattern[\s*:`_]*\[([^\]\n]*)\]", re.IGNORECASE)
_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL | re.IGNORECASE)
_PYTHON_LANGS = {"", "python", "py", "python3", "pytorch"}
_OP_PREFIXES = ("torch.nn.functional.", "torch.nn.", "nn.functional.", "nn.", "F.", "torch.", "Tensor.")


@dataclass(frozen=True)
class CodeBlock:
    code: str
    lang: str
    closed: bool


def find_code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block in order; a final fence left open (a truncated answer) is returned as not closed."""
    text = _THINK.sub("", text)
    blocks: list[CodeBlock] = []
    end = 0
    for match in _FENCE.finditer(text):
        blocks.append(CodeBlock(match.group("body"), match.group("lang").lower(), closed=True))
        end = match.end()
    tail = _OPEN_FENCE.search(text, end)
    if tail is not None:
        blocks.append(CodeBlock(text[tail.end() :], tail.group(2).lower(), closed=False))
    return blocks


def parse_final_pattern(text: str) -> list[str]:
    """Ops named on the last `Final Pattern: [...]` line, canonicalized; [] when there is none."""
    matches = _FINAL_PATTERN.findall(_THINK.sub("", text))
    if not matches:
        return []
    names = [canonical_op_name(item) for item in matches[-1].split(",")]
    return [name for name in names if name]


def canonical_op_name(raw: str) -> str:
    """`nn.Conv2d` / `'torch.nn.Conv2d()'` -> `Conv2d`; the catalog's spelling when it knows the op."""
    name = raw.strip().strip("'\"`*").strip()
    for prefix in _OP_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = name.removesuffix("()").strip()
    return _catalog_spelling(name)


def _catalog_spelling(name: str) -> str:
    try:
        from operators import CATALOG
    except ImportError:
        return name
    if name in CATALOG:
        return name
    folded = {key.lower(): key for key in CATALOG}
    return folded.get(name.lower(), name)


def _strip_main_guard(source: str, tree: ast.Module) -> str:
    """Drop top-level `if __name__ == "__main__":` blocks (demo code that the static checks would refuse)."""
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            drop.update(range(node.lineno - 1, (node.end_lineno or node.lineno)))
    if not drop:
        return source
    return "".join(line for number, line in enumerate(lines) if number not in drop).rstrip() + "\n"


def _instantiated_names(node: ast.ClassDef) -> set[str]:
    return {
        call.func.id
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    }


def _has_forward(node: ast.ClassDef) -> bool:
    return any(
        isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "forward"
        for item in node.body
    )


def choose_model_class(tree: ast.Module, entry_point: str) -> ast.ClassDef | None:
    """The class that is the program's model: one already named `entry_point` or `Model`, the only module
    class, or else the root (built by no other module class) with a forward that builds the most helpers;
    ties go to the last one defined."""
    classes = find_module_classes(tree)
    if not classes:
        return None
    for node in classes:
        if node.name in (entry_point, "Model"):
            return node
    if len(classes) == 1:
        return classes[0]
    names = {node.name for node in classes}
    builds = {node.name: _instantiated_names(node) & names for node in classes}
    used = set().union(*builds.values())
    roots = [node for node in classes if node.name not in used] or classes
    roots = [node for node in roots if _has_forward(node)] or roots
    return max(reversed(roots), key=lambda node: len(builds[node.name]))


def _pick_block(text: str) -> CodeBlock | None:
    """The last python (or unlabelled) block that defines a module class; else the last such block at all."""
    blocks = [block for block in find_code_blocks(text) if block.code.strip()]
    if not blocks:
        stripped = _THINK.sub("", text).strip()
        # Completion-style models sometimes answer with bare code and no fence.
        if re.match(r"^(import|from)\s+\w", stripped):
            return CodeBlock(stripped + "\n", "python", closed=True)
        return None
    python_blocks = [block for block in blocks if block.lang in _PYTHON_LANGS] or blocks
    for block in reversed(python_blocks):
        try:
            if find_module_classes(ast.parse(block.code)):
                return block
        except SyntaxError:
            continue
    return python_blocks[-1]


def extract_program(
    response_text: str,
    entry_point: str,
    sampled_ops: list[str] | None = None,
    *,
    require_closed: bool = False,
) -> tuple[str, list[str]]:
    """Return (program source with its model class renamed to `entry_point`, final pattern).

    The final pattern is the answer's `Final Pattern: [...]` line, or `sampled_ops` when it has none.
    Code that does not parse is returned unchanged, so the validator reports it as `syntax_error` (with its
    line) and the pipeline can send it back for repair. `require_closed` refuses a block whose closing fence is
    missing (used for answers cut off at max_tokens).
    Raises GenerationError(extraction_failure) when there is no code, or no nn.Module class in it.
    """
    block = _pick_block(response_text)
    if block is None:
        raise GenerationError(
            Category.EXTRACTION_FAILURE, "the answer contains no code block", response=response_text
        )
    if require_closed and not block.closed:
        raise GenerationError(
            Category.EXTRACTION_FAILURE,
            "the answer was cut off inside its code block (no closing fence)",
            response=response_text,
        )
    pattern = parse_final_pattern(response_text) or list(sampled_ops or [])
    source = block.code.strip("\n") + "\n"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source, pattern
    model = choose_model_class(tree, entry_point)
    if model is None:
        raise GenerationError(
            Category.EXTRACTION_FAILURE,
            "the code block defines no nn.Module subclass",
            response=response_text,
        )
    source = _strip_main_guard(source, tree)
    return rename_class(source, model.name, entry_point), pattern
