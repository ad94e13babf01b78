"""Tasks: KernelBench-format files (class `Model`, `get_inputs()`, flat `get_init_inputs()`).

Accepted layouts: one task file; a folder written by `synth-torch export-seeds` (its index.json gives the order
and the ids); KernelBench's repository layout (a folder of `level1/`, `level2/`, ... folders, or one such level
folder) with `N_name.py` files. A task that does not fit the contract is a `TaskError` before any work starts.
The checks here are source-only (AST): the task runs for the first time inside an isolated worker.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASK_CLASS = "Model"
CANDIDATE_CLASS = "ModelNew"
INDEX_FILE = "index.json"
_REQUIRED_FUNCTIONS = ("get_inputs", "get_init_inputs")
_NUMBERED = re.compile(r"^(\d+)_")
_LEVEL_DIR = re.compile(r"^level(\d+)$")


class TaskError(ValueError):
    """A task file or folder that does not follow the KernelBench contract (the message says why)."""


@dataclass(frozen=True)
class Task:
    name: str  # e.g. "level1/19_ReLU" or "3_SynthModel_Relu_Sum_5aee00cf"
    path: str
    source: str = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def sha(self) -> str:
        """Content hash: baselines are cached by it, so an edited task is measured again."""
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]


def check_task_source(source: str, where: str) -> None:
    """Raise TaskError unless `source` defines class Model and top-level get_inputs/get_init_inputs."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise TaskError(f"{where}: not valid Python ({error.msg}, line {error.lineno})") from None
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    if TASK_CLASS not in {n.name for n in tree.body if isinstance(n, ast.ClassDef)}:
        raise TaskError(f"{where}: no top-level class {TASK_CLASS}")
    missing = [f for f in _REQUIRED_FUNCTIONS if f not in names]
    if missing:
        raise TaskError(f"{where}: missing top-level {', '.join(missing)}()")


def check_candidate_source(source: str, where: str = "candidate") -> str | None:
    """None when the candidate parses and defines ModelNew, else the reason (a compile_error, not a crash)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return f"{where}: not valid Python ({error.msg}, line {error.lineno})"
    if CANDIDATE_CLASS not in {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}:
        return f"{where}: defines no class {CANDIDATE_CLASS}"
    return None


def load_task(path: str | Path, name: str | None = None, meta: dict[str, Any] | None = None) -> Task:
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"{path}: no such task file")
    source = path.read_text(encoding="utf-8")
    check_task_source(source, str(path))
    return Task(name=name or path.stem, path=str(path.resolve()), source=source, meta=dict(meta or {}))


def _number(path: Path) -> tuple[int, str]:
    match = _NUMBERED.match(path.name)
    return (int(match.group(1)) if match else 1 << 30, path.name)


def _from_index(folder: Path) -> list[Task]:
    try:
        index = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
        entries = index["tasks"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TaskError(f"{folder / INDEX_FILE}: unreadable task index ({error})") from None
    tasks = []
    for entry in entries:
        if not isinstance(entry, dict) or "file" not in entry:
            raise TaskError(f"{folder / INDEX_FILE}: a task entry without 'file': {entry!r}"[:300])
        meta = {k: v for k, v in entry.items() if k != "file"}
        tasks.append(load_task(folder / entry["file"], name=Path(entry["file"]).stem, meta=meta))
    return tasks


def _from_level(folder: Path, prefix: str = "") -> list[Task]:
    files = sorted((p for p in folder.glob("*.py") if not p.name.startswith("_")), key=_number)
    return [load_task(p, name=f"{prefix}{p.stem}") for p in files]


def load_tasks(path: str | Path) -> list[Task]:
    """Every task at `path` (a file, an export-seeds folder, a KernelBench level folder or its parent)."""
    path = Path(path)
    if path.is_file():
        return [load_task(path)]
    if not path.is_dir():
        raise TaskError(f"{path}: no such file or folder")
    if (path / INDEX_FILE).is_file():
        tasks = _from_index(path)
    else:
        levels = sorted(
            (p for p in path.iterdir() if p.is_dir() and _LEVEL_DIR.match(p.name)),
            key=lambda p: int(_LEVEL_DIR.match(p.name).group(1)),  # type: ignore[union-attr]
        )
        tasks = [t for level in levels for t in _from_level(level, f"{level.name}/")] or _from_level(path)
    if not tasks:
        raise TaskError(f"{path}: no task files found")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise TaskError(f"{path}: duplicate task names")
    return tasks
