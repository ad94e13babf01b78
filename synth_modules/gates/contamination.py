"""Reject programs that compute what a KernelBench level-1 or level-2 problem computes.

The program's op sequence is read from its code (synth_modules.analysis.opseq), never from the pattern an LLM claims, and
compared in the normalized op space against every variant of every problem (synth_modules.analysis.kernelbench):
- level 2: the same sequence (`exact`), or with strictness `reordered` the same multiset of ops;
- level 1: the problem's op, possibly repeated (consecutive repeats collapse; `reordered` compares the set).
Programs one op away from a level-2 problem (or a multi-op level-1 problem) are kept and reported as near misses;
single-op level-1 problems get no near misses, since every two-op program would be one.
The gate fails closed: a program whose op sequence cannot be read (or in which no op is found) cannot be cleared,
so it is rejected as `unreadable_ops` rather than kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from synth_modules.analysis.kernelbench import LEVELS, KernelBenchProblem, load_problems
from synth_modules.analysis.opnames import normalize_ops
from synth_modules.analysis.opseq import OpSequenceError, extract_op_sequence
from synth_modules.gates.base import Gate, GateInput
from synth_modules.types import Category, GateDecision

STRICTNESS = ("exact", "reordered")
_MAX_NEAR_MISSES = 5

Seq = tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """A KernelBench problem a sequence resembles, and how."""

    problem: KernelBenchProblem
    sequence: Seq  # the problem's variant that matched
    kind: str  # "exact" | "reordered"; near misses: "insert" | "delete" | "substitute" | "reordered" | "multiset"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernelbench": self.problem.name,
            "level": self.problem.level,
            "releases": list(self.problem.releases),
            "match": self.kind,
            "kernelbench_sequence": list(self.sequence),
        }


def _collapse_repeats(seq: Seq) -> Seq:
    return tuple(op for position, op in enumerate(seq) if position == 0 or seq[position - 1] != op)


def _exact_key(level: str, seq: Seq) -> Seq:
    return _collapse_repeats(seq) if level == "l1" else seq


def _reordered_key(level: str, seq: Seq) -> Seq:
    return tuple(sorted(set(seq))) if level == "l1" else tuple(sorted(seq))


def _one_edit(a: Seq, b: Seq) -> str | None:
    """The single edit turning `b` into `a` (insert/delete/substitute), or None if not exactly one apart."""
    if len(a) == len(b):
        differing = sum(x != y for x, y in zip(a, b, strict=True))
        return "substitute" if differing == 1 else None
    if abs(len(a) - len(b)) != 1:
        return None
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    for position in range(len(longer)):
        if longer[:position] + longer[position + 1 :] == shorter:
            return "insert" if longer is a else "delete"
    return None


def _multiset_one_apart(a: Seq, b: Seq) -> bool:
    extra, missing = Counter(a) - Counter(b), Counter(b) - Counter(a)
    return max(sum(extra.values()), sum(missing.values())) == 1


class ContaminationMatcher:
    """The KernelBench reference indexed for one configuration (levels, strictness)."""

    def __init__(self, levels: Iterable[str], strictness: str = "reordered"):
        self.levels = frozenset(levels)
        unknown = self.levels - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown KernelBench levels {sorted(unknown)}; choose from {LEVELS}")
        if strictness not in STRICTNESS:
            raise ValueError(f"strictness must be one of {STRICTNESS}, got {strictness!r}")
        self.strictness = strictness
        self._exact: dict[tuple[str, Seq], list[tuple[KernelBenchProblem, Seq]]] = {}
        self._reordered: dict[tuple[str, Seq], list[tuple[KernelBenchProblem, Seq]]] = {}
        self._near: list[tuple[KernelBenchProblem, Seq]] = []
        for level in sorted(self.levels):
            for problem in load_problems(level):
                for seq in sorted(problem.sequences):
                    self._exact.setdefault((level, _exact_key(level, seq)), []).append((problem, seq))
                    self._reordered.setdefault((level, _reordered_key(level, seq)), []).append((problem, seq))
                    if level == "l2" or len(seq) > 1:
                        self._near.append((problem, seq))

    def matches(self, ops: Iterable[str]) -> list[Match]:
        """Problems the normalized sequence `ops` matches (exact first), under this strictness."""
        seq = tuple(ops)
        if not seq:
            return []
        found: list[Match] = []
        seen: set[str] = set()
        kinds = [("exact", self._exact, _exact_key)]
        if self.strictness == "reordered":
            kinds.append(("reordered", self._reordered, _reordered_key))
        for kind, index, key in kinds:
            for level in sorted(self.levels):
                for problem, variant in index.get((level, key(level, seq)), []):
                    if problem.name not in seen:
                        seen.add(problem.name)
                        found.append(Match(problem, variant, kind))
        return found

    def near_misses(self, ops: Iterable[str]) -> list[Match]:
        """Problems one op away: inserted, deleted or substituted, the same ops in another order (strictness
        `exact`), or multisets one op apart."""
        seq = tuple(ops)
        if not seq:
            return []
        found: dict[str, Match] = {}
        for problem, variant in self._near:
            if problem.name in found or abs(len(variant) - len(seq)) > 1:
                continue  # every near-miss kind changes the length by at most one
            edit = _one_edit(seq, variant)
            if edit is None and sorted(seq) == sorted(variant):
                edit = "reordered"  # only reachable with strictness "exact": otherwise it is a match
            elif edit is None and _multiset_one_apart(seq, variant):
                edit = "multiset"
            if edit is not None:
                found[problem.name] = Match(problem, variant, edit)
        return list(found.values())


class ContaminationGate(Gate):
    """Gate form of ContaminationMatcher: rejects matches as `contaminated`, records near misses."""

    name = "contamination"
    stateful = False
    needs_verdict = False  # the op sequence comes from the AST alone

    def __init__(self, levels: Iterable[str], strictness: str = "reordered"):
        self.matcher = ContaminationMatcher(levels, strictness)

    def check(self, item: GateInput) -> GateDecision:
        try:
            try:
                raw = extract_op_sequence(item.source, item.entry_point)
            except OpSequenceError:  # entry point not found as an nn.Module class: read the file's model
                raw = extract_op_sequence(item.source)
        except OpSequenceError as error:
            return GateDecision.reject(
                Category.UNREADABLE_OPS,
                f"op sequence cannot be read, so KernelBench overlap is unknown: {error}",
            )
        except Exception as error:  # the reader's own failure on odd code must not let the program through
            return GateDecision.reject(
                Category.UNREADABLE_OPS, f"op sequence reader failed ({type(error).__name__}: {error})"[:500]
            )
        if not raw:
            return GateDecision.reject(
                Category.UNREADABLE_OPS, "no op found in forward(), so KernelBench overlap is unknown"
            )
        ops = normalize_ops(raw)
        matches = self.matcher.matches(ops)
        if matches:
            first = matches[0]
            return GateDecision.reject(
                Category.CONTAMINATED,
                f"resembles KernelBench {first.problem.level.upper()} {first.problem.name} "
                f"({first.kind} match of {' -> '.join(ops)})",
                op_sequence=ops,
                **first.to_dict(),
                also=[m.problem.name for m in matches[1:]],
            )
        near = self.matcher.near_misses(ops)
        details: dict[str, Any] = {"op_sequence": ops}
        if near:
            details["near_miss"] = [m.to_dict() for m in near[:_MAX_NEAR_MISSES]]
        return GateDecision.accept(**details)
