"""Run statistics, built incrementally from the same records the ledgers hold.

The pipeline feeds each committed sample's records in; `from_ledgers` replays a run directory through the same
code, so live stats, resumed stats and the report never disagree.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.run.store import MANIFEST_FILE, REJECTED_FILE, read_jsonl


@dataclass
class StatsTracker:
    samples: int = 0
    accepted: int = 0
    accepted_first_try: int = 0
    candidates: int = 0
    failures: Counter = field(default_factory=Counter)  # every failed candidate, by category
    final_failures: Counter = field(default_factory=Counter)  # samples that ended rejected, by category
    failures_by_stage: Counter = field(default_factory=Counter)
    op_sampled: Counter = field(default_factory=Counter)
    op_accepted: Counter = field(default_factory=Counter)
    op_used: Counter = field(default_factory=Counter)  # final_pattern ops of accepted programs
    pair_used: Counter = field(default_factory=Counter)
    stage_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    near_misses: int = 0
    started_at: float = field(default_factory=time.time)

    def record_sample(self, rejected: list[dict[str, Any]], accepted: dict[str, Any] | None) -> None:
        """One sample's outcome: its failed candidates (in attempt order) and its accepted record, if any."""
        self.samples += 1
        self.candidates += len(rejected) + (1 if accepted else 0)
        for record in rejected:
            self.failures[record.get("category") or "unknown"] += 1
            self.failures_by_stage[record.get("stage") or "unknown"] += 1
        sampled = (accepted or (rejected[-1] if rejected else {})).get("sampled_ops", [])
        for op in set(sampled):
            self.op_sampled[op] += 1
        if accepted is None:
            if rejected:
                self.final_failures[rejected[-1].get("category") or "unknown"] += 1
            return
        self.accepted += 1
        if int(accepted.get("attempt", 0)) == 0:
            self.accepted_first_try += 1
        for op in set(sampled):
            self.op_accepted[op] += 1
        pattern = accepted.get("final_pattern", [])
        for op in set(pattern):
            self.op_used[op] += 1
        for first, second in set(itertools.pairwise(pattern)):
            self.pair_used[f"{first}->{second}"] += 1
        for stage, seconds in (accepted.get("timings") or {}).items():
            if isinstance(seconds, (int, float)):
                self.stage_seconds[stage].append(float(seconds))
        if (accepted.get("gates") or {}).get("near_miss"):
            self.near_misses += 1

    @property
    def rejected(self) -> int:
        return self.samples - self.accepted

    def yield_rate(self) -> float:
        return self.accepted / self.samples if self.samples else 0.0

    def top_failure(self) -> str:
        if not self.final_failures:
            return "-"
        category, count = self.final_failures.most_common(1)[0]
        return f"{category}({count})"

    def to_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        elapsed = max(time.time() - self.started_at, 1e-9)
        per_op = {
            op: {
                "sampled": self.op_sampled[op],
                "accepted": self.op_accepted[op],
                "yield": round(self.op_accepted[op] / self.op_sampled[op], 4) if self.op_sampled[op] else 0.0,
            }
            for op in sorted(self.op_sampled)
        }
        timings = {
            stage: {"mean": round(sum(v) / len(v), 4), "max": round(max(v), 4), "n": len(v)}
            for stage, v in sorted(self.stage_seconds.items())
            if v
        }
        data: dict[str, Any] = {
            "samples": self.samples,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "candidates": self.candidates,
            "yield": round(self.yield_rate(), 4),
            "first_try_yield": round(self.accepted_first_try / self.samples, 4) if self.samples else 0.0,
            "yield_after_repair": round(self.yield_rate(), 4),
            "accepted_first_try": self.accepted_first_try,
            "accepted_after_repair": self.accepted - self.accepted_first_try,
            "valid_per_candidate": round(self.accepted / self.candidates, 4) if self.candidates else 0.0,
            "failures_by_category": dict(self.failures.most_common()),
            "final_failures_by_category": dict(self.final_failures.most_common()),
            "failures_by_stage": dict(self.failures_by_stage.most_common()),
            "per_op": per_op,
            "distinct_ops_used": len(self.op_used),
            "distinct_op_pairs_used": len(self.pair_used),
            "near_misses": self.near_misses,
            "timings": timings,
            "elapsed_s": round(elapsed, 2),
        }
        if extra:
            data.update(extra)
        return data

    @classmethod
    def from_ledgers(cls, root: Path) -> StatsTracker:
        """Rebuild the stats of a run directory from its ledgers."""
        tracker = cls()
        accepted = {rec["id"]: rec for rec in read_jsonl(root / MANIFEST_FILE)}
        rejected: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for rec in read_jsonl(root / REJECTED_FILE):
            rejected[rec["id"]].append(rec)
        times = [rec.get("created_at") for rec in accepted.values() if rec.get("created_at")]
        if times:
            tracker.started_at = min(times)
        for sample_id in sorted(set(accepted) | set(rejected)):
            tracker.record_sample(rejected.get(sample_id, []), accepted.get(sample_id))
        return tracker
