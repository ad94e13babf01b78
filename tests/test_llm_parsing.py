"""Extraction of programs from LLM answers: fences, Final Pattern, AST renaming, categorized failures."""

from __future__ import annotations

import ast

import pytest

from synth_modules.backends.parsing import (
    canonical_op_name,
    extract_program,
    find_code_blocks,
    parse_final_pattern,
)
from synth_modules.program import find_module_classes
from synth_modules.types import Category, GenerationError

ENTRY = "SynthModel_Conv2d_ReLU_0badc0de"

PROGRAM = """\
import torch
import torch.nn as nn


class Model(nn.Module):
    \"\"\"Model docstring mentioning Model stays as written.\"\"\"

    def __init__(self, channels: int):
        super(Model, self).__init__()
        self.conv = nn.Conv2d(channels, channels, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


def get_inputs():
    return [torch.randn(2, 3, 8, 8)]


def get_init_inputs():
    return [[3], {}]
"""


def _class_names(source: str) -> list[str]:
    return [node.name for node in find_module_classes(ast.parse(source))]


def test_last_python_block_wins_and_class_is_renamed_through_the_ast() -> None:
    draft = PROGRAM.replace("torch.relu", "torch.sigmoid")
    answer = (
        f"A first draft:\n```python\n{draft}```\nOn reflection, better:\n\n```python\n{PROGRAM}```\n"
        "Final Pattern: [Conv2d, ReLU]\n"
    )
    source, pattern = extract_program(answer, ENTRY)
    assert pattern == ["Conv2d", "ReLU"]
    assert "torch.relu" in source and "torch.sigmoid" not in source
    assert _class_names(source) == [ENTRY]
    assert f"super({ENTRY}, self)" in source  # references renamed too
    assert '"""Model docstring mentioning Model stays as written."""' in source  # strings untouched


def test_final_pattern_variants_are_canonicalized() -> None:
    # prefixes and quotes go; the catalog's spelling wins (F.relu is the catalog's ReLU)
    assert parse_final_pattern("**Final Pattern:** [nn.Conv2d, 'F.relu', `torch.logsumexp`]") == [
        "Conv2d",
        "ReLU",
        "logsumexp",
    ]
    assert canonical_op_name("NotAnOp") == "NotAnOp"
    assert parse_final_pattern("final_pattern = [Linear]\n...\nFinal Pattern: [GELU]") == ["GELU"]
    assert parse_final_pattern("no pattern here") == []
    assert canonical_op_name(" torch.nn.LayerNorm() ") == "LayerNorm"


def test_missing_final_pattern_falls_back_to_sampled_ops() -> None:
    source, pattern = extract_program(f"```\n{PROGRAM}```", ENTRY, ["Conv2d", "ReLU", "add"])
    assert pattern == ["Conv2d", "ReLU", "add"]
    assert _class_names(source) == [ENTRY]


def test_pattern_block_after_code_does_not_hide_the_code() -> None:
    answer = f"```python\n{PROGRAM}```\n\n```\nFinal Pattern: [Conv2d, ReLU]\n```\n"
    source, pattern = extract_program(answer, ENTRY)
    assert _class_names(source) == [ENTRY]
    assert pattern == ["Conv2d", "ReLU"]


def test_prose_without_code_is_an_extraction_failure() -> None:
    with pytest.raises(GenerationError) as caught:
        extract_program("I would combine a convolution with a ReLU, roughly like a ResNet block.", ENTRY)
    assert caught.value.category == Category.EXTRACTION_FAILURE
    assert "no code block" in caught.value.message
    assert caught.value.response.startswith("I would combine")


def test_code_without_a_module_class_is_an_extraction_failure() -> None:
    answer = "```python\nimport torch\n\ndef f(x):\n    return torch.relu(x)\n```"
    with pytest.raises(GenerationError) as caught:
        extract_program(answer, ENTRY)
    assert caught.value.category == Category.EXTRACTION_FAILURE
    assert "nn.Module" in caught.value.message


def test_code_that_does_not_parse_is_passed_on_for_the_validator() -> None:
    broken = PROGRAM.replace("def forward(self, x):", "def forward(self, x)")
    source, _ = extract_program(f"```python\n{broken}```", ENTRY)
    assert source.strip() == broken.strip()
    with pytest.raises(SyntaxError):
        ast.parse(source)


def test_root_class_is_chosen_among_helpers_and_main_guard_is_dropped() -> None:
    answer = """```python
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return torch.relu(self.block(x))


class Unused(nn.Module):
    pass


def get_inputs():
    return [torch.randn(2, 4)]


def get_init_inputs():
    return [[], {}]


if __name__ == "__main__":
    print(Net()(*get_inputs()))
```"""
    source, _ = extract_program(answer, ENTRY)
    # Net is the root that has a forward and builds a helper; Block (built by Net) and Unused keep their names.
    assert _class_names(source) == ["Block", ENTRY, "Unused"]
    assert "__main__" not in source and "print(" not in source


def test_named_model_class_wins_over_helpers() -> None:
    answer = (
        "```python\n"
        + PROGRAM.replace("class Model", "class Helper(nn.Module):\n    pass\n\n\nclass Model")
        + "```"
    )
    source, _ = extract_program(answer, ENTRY)
    assert _class_names(source) == ["Helper", ENTRY]


def test_unclosed_fence_is_refused_only_when_closure_is_required() -> None:
    cut = f"```python\n{PROGRAM}"
    blocks = find_code_blocks(cut)
    assert len(blocks) == 1 and not blocks[0].closed
    source, _ = extract_program(cut, ENTRY)  # a model that forgot the closing fence
    assert _class_names(source) == [ENTRY]
    with pytest.raises(GenerationError) as caught:
        extract_program(cut, ENTRY, require_closed=True)
    assert caught.value.category == Category.EXTRACTION_FAILURE


def test_think_sections_and_bare_code_answers() -> None:
    thinking = (
        f"<think>maybe\n```python\nclass Draft(nn.Module): pass\n```\n</think>\n```python\n{PROGRAM}```"
    )
    source, _ = extract_program(thinking, ENTRY)
    assert "Draft" not in source and _class_names(source) == [ENTRY]
    source, _ = extract_program(PROGRAM, ENTRY)  # completion-style answer with no fence at all
    assert _class_names(source) == [ENTRY]
