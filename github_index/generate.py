"""`--generate-all`: extract every nn.Module class of every source, vet it statically, deduce its inputs.

Writes the run directory's `index.jsonl` (one row per class found, with the stage it reached and why it
stopped) and `programs/<entry_point>.py` for every deduced class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from github_index.closure import ALLOWED_PACKAGES
from github_index.deduce import Deduction, deduce_many, render_program
from github_index.extract import extract_repo
from github_index.sources import RepoInfo, write_repos_json
from synth_modules.run.store import atomic_write_text
from synth_modules.sandbox.static_checks import check_static

INDEX_FILE = "index.jsonl"
PROGRAMS_DIR = "programs"
REPOS_FILE = "repos.json"
# What the sandbox's warm-up imports for extracted modules (SandboxOptions.extra_allowed_imports). What they
# may import and read is the "repository" static policy (synth_modules/data/static_allowlist.json).
TORCH_SUBMODULES = (
    "torch.amp",
    "torch.autograd",
    "torch.cuda.amp",
    "torch.distributions",
    "torch.fft",
    "torch.linalg",
    "torch.nn.attention",
    "torch.nn.init",
    "torch.nn.modules",
    "torch.nn.parameter",
    "torch.special",
)
STATIC_POLICY = "repository"  # the static checks' allow-list for repository code (synth_modules/data)
EXTRA_ALLOWED_IMPORTS = tuple(sorted((ALLOWED_PACKAGES - {"__future__"}) | set(TORCH_SUBMODULES)))
_PLACEHOLDER = "\n\ndef get_inputs():\n    return []\n\n\ndef get_init_inputs():\n    return [[], {}]\n"


@dataclass
class Selection:
    """Which classes a command works on: a regex/substring filter, a limit and a shard."""

    filter: str | None = None
    limit: int | None = None
    shard_num: int = 0
    shard_total: int = 1

    def matches(self, row: dict[str, Any]) -> bool:
        if not self.filter:
            return True
        text = f"{row.get('repo', '')}/{row.get('path', '')}:{row.get('class_name', '')}"
        return bool(re.search(self.filter, text)) or self.filter in text

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        chosen = [r for r in rows if self.matches(r)]
        chosen = [r for i, r in enumerate(chosen) if i % self.shard_total == self.shard_num]
        return chosen[: self.limit] if self.limit is not None else chosen


def static_verdict(source: str, entry_point: str) -> tuple[bool, str | None, str]:
    """The sandbox's static checks on a program (or an extracted class with placeholder input functions)."""
    if "def get_inputs" not in source:
        source = source + _PLACEHOLDER
    verdict = check_static(source, entry_point, STATIC_POLICY)
    return verdict.ok, verdict.category, verdict.message


def _repo_columns(repo: RepoInfo) -> dict[str, Any]:
    return {
        "repo_name": repo.name,
        "sha": repo.sha,
        "stars": repo.stars,
        "licenses": repo.licenses,
        "repo_link": repo.repo_link,
    }


def extract_rows(repos: list[RepoInfo], selection: Selection) -> Iterator[tuple[dict[str, Any], str]]:
    """(index row, extracted source) for every selected class, extraction and static check done."""
    for repo in repos:
        extraction = extract_repo(repo)
        rows = []
        for item in extraction.classes:
            row = {**item.to_row(), **_repo_columns(repo), "stage": "extract", "extracted": item.ok}
            if item.ok:
                ok, category, message = static_verdict(item.source, item.entry_point)
                row["static_ok"] = ok
                if not ok:
                    row.update(stage="static", category=category, message=message)
            rows.append((row, item.source))
        chosen = {id(r) for r in selection.apply([r for r, _ in rows])}
        yield from ((row, source) for row, source in rows if id(row) in chosen)


def generate_all(
    repos: list[RepoInfo],
    run_dir: Path,
    selection: Selection,
    jobs: int = 1,
    timeout_s: float = 60.0,
    memory_limit_mb: int = 4096,
    progress: bool = False,
    allow_unsandboxed: bool = False,
) -> list[dict[str, Any]]:
    """Extract + deduce over `repos`; (re)writes run_dir/index.jsonl and run_dir/programs/."""
    run_dir.mkdir(parents=True, exist_ok=True)
    programs = run_dir / PROGRAMS_DIR
    programs.mkdir(exist_ok=True)
    write_repos_json(run_dir / REPOS_FILE, repos)
    rows: list[dict[str, Any]] = []
    sources: dict[str, str] = {}
    for row, source in extract_rows(repos, selection):
        rows.append(row)
        if row["extracted"] and row.get("static_ok"):
            sources[row["id"]] = source
    by_id = {row["id"]: row for row in rows}
    items = [(key, source, by_id[key]["entry_point"]) for key, source in sources.items()]
    results = deduce_many(
        items,
        jobs=jobs,
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb,
        allow_unsandboxed=allow_unsandboxed,
    )
    for done, (key, deduction) in enumerate(results, start=1):
        _record_deduction(by_id[key], sources[key], deduction, programs)
        if progress and done % 25 == 0:
            print(f"deduced {done}/{len(items)}", flush=True)
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    atomic_write_text(run_dir / INDEX_FILE, text)
    return rows


def _record_deduction(row: dict[str, Any], source: str, deduction: Deduction, programs: Path) -> None:
    row["deduced"] = deduction.ok
    row["attempts"] = deduction.attempts
    if not deduction.ok:
        row.update(stage="deduce", category=deduction.category, message=deduction.message)
        row["trace"] = deduction.trace[-4:]
        return
    program = render_program(source, deduction)
    ok, category, message = static_verdict(program, row["entry_point"])
    if not ok:
        row.update(deduced=False, stage="static", category=category, message=message)
        return
    row.update(stage="deduce", file=f"{PROGRAMS_DIR}/{row['entry_point']}.py")
    row["init_inputs"] = [deduction.init_args, deduction.init_kwargs]
    row["inputs"] = deduction.inputs
    row["uses_mock_config"] = deduction.uses_mock_config
    atomic_write_text(programs / f"{row['entry_point']}.py", program)
