"""Reading a run directory's ledgers the way the end-to-end tests judge a run: what was decided, and how."""

from __future__ import annotations

import json
from pathlib import Path


def read_ledger(path: Path) -> list[dict]:
    """Every line of a JSONL ledger, [] before the file exists (a torn line fails loudly, unlike read_jsonl)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def decisions(out: Path) -> tuple[list[str], list[str]]:
    """Accepted ids and finally rejected ids, in ledger order: the two e2e suites compare runs by these."""
    accepted = [rec["id"] for rec in read_ledger(out / "manifest.jsonl")]
    rejected = [rec["id"] for rec in read_ledger(out / "rejected.jsonl") if rec.get("final")]
    return accepted, rejected
