"""Reject programs already accepted in the output directory, exactly or nearly (first one kept).

Exact duplicates share a canonical hash (synth_modules.analysis.canonical: identifiers, class name, docstrings, comments
and formatting normalized). Near duplicates have a Jaccard similarity of canonical token shingles at or above the
threshold: MinHash LSH (datasketch) finds candidates in sublinear time, queried at a lower threshold so that
true near duplicates are not lost to LSH's probabilistic banding, and each candidate is confirmed with the exact
Jaccard of the stored shingle sets. So "accepted" really means "below the threshold against every earlier program".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from synth_modules.analysis.canonical import fingerprint_parts, jaccard
from synth_modules.gates.base import Gate, GateInput
from synth_modules.types import Category, GateDecision

_LSH_SLACK = 0.8  # candidates are fetched at threshold * slack, then confirmed exactly
_SEED = 1


def _identity(value: int) -> int:
    return value


@dataclass
class Fingerprint:
    """What dedup remembers about a program."""

    exact: str
    shingles: np.ndarray
    minhash: MinHash


class DedupGate(Gate):
    """Exact (canonical AST hash) and near (MinHash LSH over token shingles) duplicate filter."""

    name = "dedup"
    stateful = True  # decisions depend on what was admitted before: run at commit time, in index order

    def __init__(self, threshold: float = 0.9, num_perm: int = 128, shingle_size: int = 5):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"dedup threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self._lsh = MinHashLSH(threshold=max(0.05, min(0.99, threshold * _LSH_SLACK)), num_perm=num_perm)
        self._by_hash: dict[str, str] = {}
        self._shingles: dict[str, np.ndarray] = {}
        self._pending: dict[str, Fingerprint] = {}  # computed in check(), reused by admit()

    def __len__(self) -> int:
        return len(self._shingles)

    def fingerprint(self, source: str) -> Fingerprint:
        exact, shingles = fingerprint_parts(source, self.shingle_size)
        minhash = MinHash(num_perm=self.num_perm, seed=_SEED, hashfunc=_identity)
        minhash.update_batch(shingles.tolist())
        return Fingerprint(exact, shingles, minhash)

    def nearest(self, fingerprint: Fingerprint) -> tuple[str | None, float]:
        """The most similar admitted program among LSH candidates, and its exact Jaccard similarity."""
        best_id, best = None, 0.0
        for key in sorted(self._lsh.query(fingerprint.minhash)):
            similarity = jaccard(fingerprint.shingles, self._shingles[key])
            if similarity > best:
                best_id, best = key, similarity
        return best_id, best

    def check(self, item: GateInput) -> GateDecision:
        fingerprint = self.fingerprint(item.source)
        self._pending = {item.id: fingerprint}
        original = self._by_hash.get(fingerprint.exact)
        if original is not None:
            return GateDecision.reject(
                Category.DUPLICATE, f"exact duplicate of {original}", kind="exact", duplicate_of=original
            )
        nearest, similarity = self.nearest(fingerprint)
        if nearest is not None and similarity >= self.threshold:
            return GateDecision.reject(
                Category.DUPLICATE,
                f"near duplicate of {nearest} (Jaccard {similarity:.3f} >= {self.threshold})",
                kind="near",
                duplicate_of=nearest,
                jaccard=round(similarity, 4),
            )
        if nearest is None:
            return GateDecision.accept()
        return GateDecision.accept(nearest=nearest, jaccard=round(similarity, 4))

    def admit(self, item: GateInput) -> None:
        if item.id in self._shingles:
            return
        fingerprint = self._pending.pop(item.id, None) or self.fingerprint(item.source)
        self._by_hash.setdefault(fingerprint.exact, item.id)
        self._shingles[item.id] = fingerprint.shingles
        self._lsh.insert(item.id, fingerprint.minhash)
