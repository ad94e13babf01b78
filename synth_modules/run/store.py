"""The run directory (DESIGN.md contract): run.json, program files, manifest.jsonl, rejected.jsonl, stats.json.

Only the parent process writes here. Ledger lines are appended, flushed and fsynced one at a time; files are
written to a temporary name and renamed, so a run killed at any instant leaves every ledger line complete and
every program file whole. Resume reads the ledgers back: a sample whose id is already accepted, or finally
rejected, is never processed again.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.config import OPERATIONAL_KEYS, ConfigError, GeneratorConfig

RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.jsonl"
REJECTED_FILE = "rejected.jsonl"
STATS_FILE = "stats.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + fsync + rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the complete lines of a ledger; a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


class Ledger:
    """An append-only JSONL file with durable appends."""

    def __init__(self, path: Path):
        self.path = path
        self._repair_torn_tail()
        self._handle = path.open("a", encoding="utf-8")

    def _repair_torn_tail(self) -> None:
        """Drop a partial last line left by a kill, so the next append starts on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            data = self.path.read_bytes()
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)

    def append(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a config that decides what a run produces (resume must match it)."""
    return {k: v for k, v in config.items() if k not in OPERATIONAL_KEYS}


@dataclass
class RunState:
    """What a run directory already holds (for resume and for seeding the dedup gate)."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    finally_rejected: set[str] = field(default_factory=set)

    @property
    def done_ids(self) -> set[str]:
        return set(self.accepted) | self.finally_rejected


class RunStore:
    """Owns one output directory for the lifetime of a run."""

    def __init__(self, root: Path):
        self.root = root
        self._manifest: Ledger | None = None
        self._rejected: Ledger | None = None

    @classmethod
    def open(cls, config: GeneratorConfig, run_info: dict[str, Any]) -> RunStore:
        """Create or reopen `config.output_dir`, refusing a different config unless `force`."""
        store = cls(config.output_path)
        store.root.mkdir(parents=True, exist_ok=True)
        run_file = store.root / RUN_FILE
        new_config = config.to_dict()
        if run_file.exists():
            previous = json.loads(run_file.read_text(encoding="utf-8"))
            old = comparable_config(previous.get("config", {}))
            new = comparable_config(new_config)
            if old != new and not config.force:
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
                raise ConfigError(
                    f"{store.root} holds a run with a different config ({details}); "
                    "use another output_dir, or force=true to continue it anyway"
                )
            run_info = {**previous, **run_info, "started_at": previous.get("started_at")}
            run_info.setdefault("resumed_at", [])
            run_info["resumed_at"] = [*previous.get("resumed_at", []), time.time()]
        atomic_write_json(run_file, {**run_info, "config": new_config})
        store._manifest = Ledger(store.root / MANIFEST_FILE)
        store._rejected = Ledger(store.root / REJECTED_FILE)
        return store

    def load_state(self) -> RunState:
        state = RunState()
        for record in read_jsonl(self.root / MANIFEST_FILE):
            if (self.root / record["file"]).exists():
                state.accepted[record["id"]] = record
        for record in read_jsonl(self.root / REJECTED_FILE):
            if record.get("final", True):
                state.finally_rejected.add(record["id"])
        return state

    def program_path(self, entry_point: str) -> Path:
        return self.root / f"{entry_point}.py"

    def accept(self, source: str, record: dict[str, Any]) -> None:
        """Write the program file, then its manifest line (a file without a line is rewritten on resume)."""
        assert self._manifest is not None
        atomic_write_text(self.program_path(record["entry_point"]), source)
        self._manifest.append(record)

    def reject(self, record: dict[str, Any]) -> None:
        assert self._rejected is not None
        self._rejected.append(record)

    def write_stats(self, stats: dict[str, Any]) -> None:
        atomic_write_json(self.root / STATS_FILE, stats)

    def close(self) -> None:
        for ledger in (self._manifest, self._rejected):
            if ledger is not None:
                ledger.close()
