"""The kernel-evaluator corpus (tests/kernel_search_corpus/): candidates, their tasks and expected outcomes.

Shared by the CPU tests, the GPU tests and benchmarks/kernel_search_gpu.py, so all three read the same
expectations from the candidates' header comments (format in the corpus README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "kernel_search_corpus"
_OUTCOME = re.compile(r"(cpu|cuda)=([a-z_]+(?::[a-z_]+)?)")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    task_path: Path
    expect: dict[str, str]  # device -> "category" or "category:hack"
    unchecked: dict[str, str]  # the same with static checks off

    @property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")


def _header(text: str, key: str) -> str:
    match = re.search(rf"^# {key}: (.*)$", text, re.MULTILINE)
    return match.group(1) if match else ""


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.py")):
        if path.name.startswith("task_"):
            continue
        text = path.read_text(encoding="utf-8")
        expect = dict(_OUTCOME.findall(_header(text, "expect")))
        unchecked = {**expect, **dict(_OUTCOME.findall(_header(text, "unchecked")))}
        task = CORPUS / f"task_{_header(text, 'task').strip()}.py"
        cases.append(Case(path.stem, path, task, expect, unchecked))
    return cases


def outcome(category: str, hack: str | None) -> str:
    return f"{category}:{hack}" if hack else category
