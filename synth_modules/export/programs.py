"""Reading the accepted programs of a run directory and instantiating them, for every exporter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from synth_modules.program import split_init_inputs
from synth_modules.run.store import MANIFEST_FILE, RUN_FILE, read_jsonl


@dataclass
class ProgramRecord:
    """One accepted program: its manifest line (or a bare file) and where its source lives."""

    id: str
    entry_point: str
    path: Path
    ops: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")


def load_programs(output_dir: str | Path) -> list[ProgramRecord]:
    """Accepted programs in manifest order; a folder without a manifest yields its `*.py` files by name."""
    root = Path(output_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    manifest = root / MANIFEST_FILE
    if not manifest.exists():
        return [ProgramRecord(id=p.stem, entry_point=p.stem, path=p) for p in sorted(root.glob("*.py"))]
    records: list[ProgramRecord] = []
    for line in read_jsonl(manifest):
        entry_point = line["entry_point"]
        path = root / line.get("file", f"{entry_point}.py")
        if not path.exists():
            continue  # a manifest line whose file was removed by hand is not an accepted program any more
        ops = line.get("final_pattern") or line.get("sampled_ops") or []
        records.append(
            ProgramRecord(
                id=str(line["id"]), entry_point=entry_point, path=path, ops=list(ops), manifest=line
            )
        )
    return records


def load_run_info(output_dir: str | Path) -> dict[str, Any]:
    """run.json of the run directory ({} when absent, e.g. a plain folder of programs)."""
    path = Path(output_dir) / RUN_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def init_inputs(module: ModuleType) -> tuple[list[Any], dict[str, Any]]:
    """`get_init_inputs()` as (args, kwargs); a bare list (KernelBench style) means positional args only."""
    return split_init_inputs(module.get_init_inputs())
