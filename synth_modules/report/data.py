"""Reading a run directory into the records the report works from (DESIGN.md run-directory contract)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.run.store import MANIFEST_FILE, REJECTED_FILE, RUN_FILE, read_jsonl


@dataclass
class RunRecords:
    """Everything the ledgers say about a run."""

    root: Path
    run: dict[str, Any] = field(default_factory=dict)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # manifest lines, in index order
    rejected: list[dict[str, Any]] = field(default_factory=list)  # every failed candidate

    @property
    def config(self) -> dict[str, Any]:
        return self.run.get("config", {})

    def final_rejections(self) -> list[dict[str, Any]]:
        """The last failed candidate of each sample that ended rejected."""
        accepted_ids = {rec["id"] for rec in self.accepted}
        last: dict[str, dict[str, Any]] = {}
        for rec in self.rejected:
            if rec["id"] not in accepted_ids and rec.get("final", True):
                last[rec["id"]] = rec
        return list(last.values())

    def decisions(self) -> list[tuple[float, bool]]:
        """(time, accepted?) of every decided sample, in time order."""
        events = [(float(rec["created_at"]), True) for rec in self.accepted if rec.get("created_at")]
        events += [
            (float(rec["created_at"]), False) for rec in self.final_rejections() if rec.get("created_at")
        ]
        return sorted(events)

    def source(self, record: dict[str, Any]) -> str | None:
        path = self.root / record.get("file", "")
        return path.read_text(encoding="utf-8") if record.get("file") and path.is_file() else None


def load_run(output_dir: str | Path) -> RunRecords:
    """Read run.json, manifest.jsonl and rejected.jsonl (torn last lines are skipped)."""
    root = Path(output_dir)
    records = RunRecords(root)
    run_file = root / RUN_FILE
    if run_file.exists():
        records.run = json.loads(run_file.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for rec in read_jsonl(root / MANIFEST_FILE):
        if rec.get("id") not in seen:  # a resumed run never duplicates, but be robust to it
            seen.add(rec.get("id"))
            records.accepted.append(rec)
    records.accepted.sort(key=lambda rec: (rec.get("index", 0), rec.get("id", "")))
    records.rejected = list(read_jsonl(root / REJECTED_FILE))
    return records
