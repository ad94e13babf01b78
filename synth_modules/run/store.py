"""The run directory (DESIGN.md contract): run.json, program files, manifest.jsonl, rejected.jsonl, stats.json.

Only the parent process writes here, and only one run at a time (run/lock.py). Guarantees:
- every file is written to a temporary name, fsynced, renamed, and the directory fsynced, so a kill or a power
  cut leaves a file either whole or absent;
- a sample's outcome is one unit (`RunStore.commit`): its rejected attempts and its acceptance appear together
  or not at all. The accepted program is staged in `.staging/` first, then the rejection lines, then the manifest
  line (the commit point), then the staged file is renamed into place. Opening the store finishes a commit that
  passed its commit point (renames the staged file) and removes the traces of one that did not (rejection lines
  of a sample that is neither accepted nor finally rejected, staged files without a manifest line);
- a manifest line whose file is missing (deleted by hand) is removed when the store opens, so the sample is
  redone into exactly one line;
- a program file is never overwritten: a name already taken by another sample, or by a different file, is a
  collision (`ProgramFileCollision`) the caller turns into a rejection.
Resume reads the ledgers back: a sample whose id is accepted, or finally rejected, is never processed again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.config import OPERATIONAL_KEYS, ConfigError, GeneratorConfig
from synth_modules.run.lock import DirectoryLock

RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.jsonl"
REJECTED_FILE = "rejected.jsonl"
STATS_FILE = "stats.json"
STAGING_DIR = ".staging"


def fsync_directory(path: Path) -> None:
    """Make a rename (or a new file) in `path` durable: the directory entry lives in the directory itself."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as error:  # a filesystem that cannot sync directories (some FUSE/network mounts)
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + fsync + rename + directory fsync: never half a file."""
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
    fsync_directory(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace a ledger as a whole (recovery only; normal writes append)."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records))


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
        created = not path.exists()
        self._repair_torn_tail()
        self._handle = path.open("a", encoding="utf-8")
        if created:
            fsync_directory(path.parent)

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
        self.append_many([record])

    def append_many(self, records: list[dict[str, Any]]) -> None:
        """Append lines with one write and one fsync (durable when this returns)."""
        if not records:
            return
        self._handle.write("".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def program_file(record: dict[str, Any]) -> str:
    """The program file a manifest line names (lines always have `file`; the fallback reads old ledgers)."""
    return str(record.get("file") or f"{record['entry_point']}.py")


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


class ProgramFileCollision(Exception):
    """A program's file name is taken (by another sample's program, or by a file the run did not write)."""


class RunStore:
    """Owns one output directory for the lifetime of a run (holding its lock from open to close)."""

    def __init__(self, root: Path):
        self.root = root
        self._manifest: Ledger | None = None
        self._rejected: Ledger | None = None
        self._lock: DirectoryLock | None = None
        self._claimed: dict[str, str] = {}  # program file -> id of the sample that owns it

    @classmethod
    def open(cls, config: GeneratorConfig, run_info: dict[str, Any]) -> RunStore:
        """Lock and create or reopen `config.output_dir`, refusing a different config unless `force`."""
        store = cls(config.output_path)
        store._lock = DirectoryLock(store.root, "run").acquire()  # before anything is read or written
        try:
            store._write_run_file(config, run_info)
            store.recover()
        except BaseException:
            store._lock.release()
            raise
        store._manifest = Ledger(store.root / MANIFEST_FILE)
        store._rejected = Ledger(store.root / REJECTED_FILE)
        return store

    def _write_run_file(self, config: GeneratorConfig, run_info: dict[str, Any]) -> None:
        run_file = self.root / RUN_FILE
        new_config = config.to_dict()
        if run_file.exists():
            previous = json.loads(run_file.read_text(encoding="utf-8"))
            old = comparable_config(previous.get("config", {}))
            new = comparable_config(new_config)
            if old != new and not config.force:
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
                raise ConfigError(
                    f"{self.root} holds a run with a different config ({details}); "
                    "use another output_dir, or force=true to continue it anyway"
                )
            run_info = {**previous, **run_info, "started_at": previous.get("started_at")}
            run_info["resumed_at"] = [*previous.get("resumed_at", []), time.time()]
        atomic_write_json(run_file, {**run_info, "config": new_config})

    # --- recovery ---------------------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """Finish or undo the commit a kill interrupted; drop manifest lines whose file is gone. Counts changes."""
        staging = self.root / STAGING_DIR
        counts = {"rolled_forward": 0, "dropped_manifest_lines": 0, "dropped_rejections": 0, "unstaged": 0}
        manifest = list(read_jsonl(self.root / MANIFEST_FILE))
        kept = []
        for record in manifest:
            path, staged = self.root / program_file(record), staging / program_file(record)
            if staged.exists():  # past the commit point: finish it
                os.replace(staged, path)
                fsync_directory(self.root)
                counts["rolled_forward"] += 1
            if path.exists():
                kept.append(record)
        counts["dropped_manifest_lines"] = len(manifest) - len(kept)
        if counts["dropped_manifest_lines"]:
            write_jsonl(self.root / MANIFEST_FILE, kept)
        rejected = list(read_jsonl(self.root / REJECTED_FILE))
        complete = {r["id"] for r in kept} | {r["id"] for r in rejected if r.get("final", True)}
        whole = [r for r in rejected if r["id"] in complete]
        counts["dropped_rejections"] = len(rejected) - len(whole)
        if counts["dropped_rejections"]:
            write_jsonl(self.root / REJECTED_FILE, whole)
        if staging.is_dir():  # staged before a commit point that was never reached
            for leftover in staging.iterdir():
                leftover.unlink()
                counts["unstaged"] += 1
            staging.rmdir()
        self._claimed = {program_file(r): r["id"] for r in kept}
        return counts

    def load_state(self) -> RunState:
        state = RunState()
        for record in read_jsonl(self.root / MANIFEST_FILE):
            if (self.root / program_file(record)).exists():
                state.accepted[record["id"]] = record
        for record in read_jsonl(self.root / REJECTED_FILE):
            if record.get("final", True):
                state.finally_rejected.add(record["id"])
        return state

    # --- writing ----------------------------------------------------------------------------------------
    def program_path(self, entry_point: str) -> Path:
        return self.root / f"{entry_point}.py"

    def collision(self, file: str, source: str, sample_id: str) -> str | None:
        """Why `file` cannot take `source` for `sample_id`, or None when it is free (or already holds it)."""
        owner = self._claimed.get(file)
        if owner is not None and owner != sample_id:
            return f"{file} already holds the program of sample {owner}"
        path = self.root / file
        if owner is None and path.exists() and path.read_text(encoding="utf-8") != source:
            return f"{file} already exists in {self.root} with other contents (not written by this run)"
        return None

    def commit(
        self, rejections: list[dict[str, Any]], accepted: tuple[str, dict[str, Any]] | None = None
    ) -> None:
        """One sample's outcome as one unit: its rejected attempts and (optionally) its accepted program.

        Raises ProgramFileCollision, before writing anything, when the accepted program's file name is taken.
        """
        assert self._manifest is not None and self._rejected is not None
        staged: Path | None = None
        if accepted is not None:
            source, record = accepted
            problem = self.collision(record["file"], source, record["id"])
            if problem is not None:
                raise ProgramFileCollision(problem)
            if not (self.root / record["file"]).exists():  # an identical file (same content) is kept as is
                staged = self.root / STAGING_DIR / record["file"]
                atomic_write_text(staged, source)
        self._rejected.append_many(rejections)
        if accepted is None:
            return
        self._manifest.append(record)  # the commit point
        if staged is not None:
            os.replace(staged, self.root / record["file"])
            fsync_directory(self.root)
        self._claimed[record["file"]] = record["id"]

    def accept(self, source: str, record: dict[str, Any]) -> None:
        """A sample accepted at its first attempt (see commit)."""
        self.commit([], (source, record))

    def reject(self, record: dict[str, Any]) -> None:
        """A sample rejected at its only attempt (see commit)."""
        self.commit([record])

    def write_stats(self, stats: dict[str, Any]) -> None:
        atomic_write_json(self.root / STATS_FILE, stats)

    def close(self) -> None:
        for ledger in (self._manifest, self._rejected):
            if ledger is not None:
                ledger.close()
        self._manifest = self._rejected = None
        with contextlib.suppress(OSError):  # empty unless a commit was interrupted
            (self.root / STAGING_DIR).rmdir()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
