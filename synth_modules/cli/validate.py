"""`synth-torch validate PATH... [--json]`: run any program files or folders through the same sandbox.

Folders expand to their `**/*.py` files (`__init__.py` skipped). The entry point is the class named like the
file stem when there is one (the program file contract), else the file's single nn.Module subclass. With
`--json`, one JSON object per file and line: path, ok, stage, category, message, seconds. Exit code 0 when
every file passed, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.sandbox.isolation import UNSAFE_FLAG, SandboxUnavailableError
from synth_modules.types import Verdict

_SKIP_NAMES = frozenset({"__init__.py", "setup.py", "conftest.py"})


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given, folders as their sorted `**/*.py`; duplicates dropped, order kept."""
    seen: set[Path] = set()
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*.py") if p.name not in _SKIP_NAMES and p.is_file())
        elif path.exists():
            candidates = [path]
        else:
            raise FileNotFoundError(raw)
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                files.append(candidate)
    return files


def entry_point_for(path: Path, source: str) -> str | None:
    """The class named like the file stem when the file defines one (the program file contract)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    names = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return path.stem if path.stem in names else None


def _jobs(files: list[Path]) -> Iterator[tuple[Path, ValidationJob]]:
    for index, path in enumerate(files):
        try:
            source = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            source = f"# unreadable: {exc}\n"
        job_id = f"validate-{index:06d}-{path.stem}"
        yield path, ValidationJob(id=job_id, source=source, entry_point=entry_point_for(path, source))


def _row(path: Path, verdict: Verdict) -> dict[str, object]:
    return {
        "path": str(path),
        "ok": verdict.ok,
        "stage": verdict.stage,
        "category": verdict.category,
        "message": verdict.message,
        "seconds": round(verdict.seconds, 3),
    }


def _print_table_row(row: dict[str, object], out: TextIO) -> None:
    status = "ok" if row["ok"] else str(row["category"])
    message = str(row["message"]).replace("\n", " ")
    if len(message) > 100:
        message = message[:97] + "..."
    print(
        f"{status:<18} {row['seconds']:>7.2f}s  {row['path']}" + (f"  ({message})" if message else ""),
        file=out,
    )


def run_validate(
    paths: list[str],
    as_json: bool = False,
    num_workers: int = max(1, os.cpu_count() or 1),
    timeout_s: float = 60,
    memory_limit_mb: int = 4096,
    cpu_vectorize: bool = False,
    out: TextIO | None = None,
    allow_unsandboxed: bool = False,
) -> int:
    """Validate program files/folders; print one row (or JSON line) per file in input order; 0 if all ok."""
    out = out or sys.stdout
    try:
        files = expand_paths(paths)
    except FileNotFoundError as exc:
        print(f"synth-torch validate: no such file or folder: {exc}", file=sys.stderr)
        return 2
    if not files:
        print("synth-torch validate: no program files found", file=sys.stderr)
        return 2
    options = SandboxOptions(
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb,
        cpu_vectorize=cpu_vectorize,
        allow_unsandboxed=allow_unsandboxed,
    )
    failed = 0
    try:
        pool = SandboxPool(num_workers=max(1, min(num_workers, len(files))), options=options)
    except SandboxUnavailableError as exc:
        print(f"synth-torch validate: {exc}", file=sys.stderr)
        return 2
    with pool:
        submitted = [(path, pool.submit(job)) for path, job in _jobs(files)]
        for path, future in submitted:
            row = _row(path, future.result())
            failed += not row["ok"]
            if as_json:
                print(json.dumps(row), file=out, flush=True)
            else:
                _print_table_row(row, out)
    if not as_json:
        print(f"{len(files) - failed}/{len(files)} programs passed", file=out)
    return 0 if failed == 0 else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `validate` sub-command's arguments (shared with the main CLI)."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="program files or folders")
    parser.add_argument("--json", action="store_true", help="one JSON object per file and line")
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="sandbox workers")
    parser.add_argument(
        "--timeout-s", "--timeout", type=float, default=60.0, help="wall-clock seconds per program"
    )
    parser.add_argument("--memory-limit-mb", type=int, default=4096, help="memory cap per program")
    parser.add_argument(
        "--cpu-vectorize",
        action="store_true",
        help="compile with Inductor's SIMD CPU kernels (default: scalar kernels, about 2x faster to build)",
    )
    parser.add_argument(
        UNSAFE_FLAG,
        dest="allow_unsandboxed",
        action="store_true",
        help="validate even where Landlock is unavailable (prints a warning; see docs/sandbox.md)",
    )


def run_validate_args(args: argparse.Namespace) -> int:
    """`run_validate` on parsed arguments, for this module's parser and the main CLI's `validate` alike."""
    return run_validate(
        args.paths,
        as_json=args.json,
        num_workers=args.workers,
        timeout_s=args.timeout_s,
        memory_limit_mb=args.memory_limit_mb,
        cpu_vectorize=args.cpu_vectorize,
        allow_unsandboxed=args.allow_unsandboxed,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synth-torch validate", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_validate_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
