"""Re-check the accepted programs of a run from their files: the evidence behind "no KernelBench lookalikes, no
duplicates" in the report, independent of what the gates decided while the run was going (or whether they were on).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from synth_modules.analysis.opseq import OpSequenceError, normalized_op_sequence
from synth_modules.gates.base import GateInput
from synth_modules.gates.contamination import ContaminationMatcher
from synth_modules.gates.dedup import DedupGate
from synth_modules.report.data import RunRecords
from synth_modules.types import Verdict

DEFAULT_LIMIT = 20000  # programs audited; larger runs audit an evenly spaced subset and say so
_LISTED = 20


def audit_accepted(records: RunRecords, threshold: float = 0.9, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """Contamination (levels 1+2, reordered) and exact/near duplicates among the accepted programs."""
    accepted = records.accepted
    step = max(1, -(-len(accepted) // limit))
    subset = accepted[::step]
    matcher = ContaminationMatcher({"l1", "l2"}, "reordered")
    dedup = DedupGate(threshold=threshold)
    code_ops: Counter[str] = Counter()
    contaminated: list[dict[str, Any]] = []
    exact: list[dict[str, Any]] = []
    near: list[dict[str, Any]] = []
    unreadable: list[str] = []
    near_misses = 0
    for record in subset:
        source = records.source(record)
        if source is None:
            unreadable.append(record["id"])
            continue
        try:
            ops = normalized_op_sequence(source, record.get("entry_point"))
        except OpSequenceError:
            unreadable.append(record["id"])
            continue
        code_ops.update(set(ops))
        matches = matcher.matches(ops)
        if matches:
            contaminated.append({"id": record["id"], **matches[0].to_dict(), "op_sequence": ops})
        elif matcher.near_misses(ops):
            near_misses += 1
        item = GateInput(record["id"], record.get("entry_point", ""), source, [], Verdict(True, "done"))
        decision = dedup.check(item)
        if not decision.keep:
            pair = {"id": record["id"], **decision.details}
            (exact if decision.details.get("kind") == "exact" else near).append(pair)
        dedup.admit(item)
    return {
        "programs": len(subset) - len(unreadable),
        "sampled_every": step,
        "threshold": threshold,
        "contaminated": len(contaminated),
        "contaminated_examples": contaminated[:_LISTED],
        "near_misses": near_misses,
        "exact_duplicates": len(exact),
        "near_duplicates": len(near),
        "duplicate_examples": (exact + near)[:_LISTED],
        "unreadable": unreadable[:_LISTED],
        "code_ops": dict(code_ops.most_common()),
    }
