"""Reads tests/fixtures/sandbox_corpus: programs whose leading comments declare the verdict they must get."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from synth_modules.sandbox import SandboxPool, ValidationJob
from synth_modules.types import Verdict

CORPUS_DIR = Path(__file__).parent / "fixtures" / "sandbox_corpus"
ESCAPE_MARKER_GLOB = "/tmp/synth_sandbox_escape_*"
SLEEPER_ARG = "4242"  # corpus programs that spawn processes run `sleep 4242`
STATIC_CATEGORIES = {"syntax_error", "structure_error", "unsafe_code", "import_error"}


# A minimal valid program around a snippet under test (the static-check tests' wrapper).
PROGRAM_HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
PROGRAM_FOOTER = """

class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)


def get_inputs():
    return [torch.randn(2, 3)]


def get_init_inputs():
    return [[], {}]
"""


def program(body: str, header: str = PROGRAM_HEADER) -> str:
    """`body` between the imports and a trivial Model, so a check sees it in a complete program file."""
    return header + "\n" + body + "\n" + PROGRAM_FOOTER


def _header(source: str, key: str) -> str | None:
    match = re.search(rf"^# {re.escape(key)}: (.+)$", source, re.MULTILINE)
    return match.group(1).strip() if match else None


@dataclass
class CorpusProgram:
    path: Path
    source: str
    expect: str
    expect_unchecked: str
    expected_output_shapes: list[list[int]] | None = None
    extra: dict = field(default_factory=dict)
    armed: str | None = None  # "cuda": the payload runs only where CUDA is visible
    needs_landlock: bool = (
        False  # containment relies on Landlock (skipped, with the refusal shown, without it)
    )

    @property
    def name(self) -> str:
        return self.path.stem

    def job(self) -> ValidationJob:
        return ValidationJob(
            id=self.name,
            source=self.source,
            expected_output_shapes=self.expected_output_shapes,
            extra=dict(self.extra),
        )


def load_corpus() -> list[CorpusProgram]:
    programs = []
    for path in sorted(CORPUS_DIR.glob("*.py")):
        source = path.read_text()
        expect = _header(source, "expect")
        assert expect, f"{path.name} declares no '# expect:'"
        shapes = _header(source, "expected-output-shapes")
        timeout = _header(source, "timeout")
        programs.append(
            CorpusProgram(
                path=path,
                source=source,
                expect=expect,
                expect_unchecked=_header(source, "expect-unchecked") or expect,
                expected_output_shapes=json.loads(shapes) if shapes else None,
                extra={"timeout_s": float(timeout)} if timeout else {},
                armed=_header(source, "armed"),
                needs_landlock=_header(source, "needs") == "landlock",
            )
        )
    return programs


def validate_corpus(pool: SandboxPool, programs: list[CorpusProgram]) -> dict[str, Verdict]:
    """Verdicts by program name; all are submitted before any is awaited, so the workers share them."""
    futures = {item.name: pool.submit(item.job()) for item in programs}
    return {name: future.result() for name, future in futures.items()}


def outcome(verdict: Verdict) -> str | None:
    """`ok` or the failure category: the word a corpus file's `# expect:` header names."""
    return "ok" if verdict.ok else verdict.category
