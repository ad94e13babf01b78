"""The bridge from a config to a measurement: render the candidate, evaluate it once, score it.

`CandidateObjective` renders a config through its space, looks the source's SHA-256 up in the run database
(identical code is measured once, across strategies, runs and resumes) and otherwise hands it to the
evaluator. A batch is evaluated by `jobs` threads at once: each evaluation is its own isolated process, so
candidates compile in parallel on the CPU cores while the evaluator's device lock lets only one at a time time
on the GPU. The score is the speedup over the better of eager and torch.compile's default; a candidate the
evaluator did not accept (wrong, crashed, timed out, a reward hack, a fallback) is a failure with its category.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kernel_search.spaces.base import TaskSpace
from kernel_search.store.database import SearchDatabase, source_hash
from kernel_search.tuning.search_space import Config
from kernel_search.tuning.tuner import FAILED, OK, Outcome

# (candidate source, candidate name) -> the evaluator's result record (EvalResult.to_dict()).
EvaluateFn = Callable[[str, str], dict[str, Any]]


def speedup_over_best_baseline(record: dict[str, Any]) -> float | None:
    """runtime of the better of eager and compile-default over the candidate's runtime; None if not a win."""
    if record.get("category") != OK or not record.get("correct"):
        return None
    speedups = [record.get(k) for k in ("speedup_vs_eager", "speedup_vs_compile")]
    speedups = [float(s) for s in speedups if isinstance(s, (int, float)) and s > 0]
    return min(speedups) if speedups else None


def outcome_of(record: dict[str, Any], digest: str, cached: bool) -> Outcome:
    score = speedup_over_best_baseline(record)
    payload = {
        "source_hash": digest,
        "category": record.get("category"),
        "runtime_us": record.get("runtime_us"),
        "iqr_us": record.get("iqr_us"),
        "speedup_vs_eager": record.get("speedup_vs_eager"),
        "speedup_vs_compile": record.get("speedup_vs_compile"),
        "cached_measurement": cached,
        # no compile-default baseline (it failed for the task): the score is the speedup over eager alone
        "eager_only": record.get("speedup_vs_compile") is None,
    }
    if score is None:
        status = str(record.get("category") or FAILED)
        status = FAILED if status == OK else status  # "ok" but incorrect or without a speedup
        return Outcome(None, status, str(record.get("message", ""))[:500], payload)
    return Outcome(score, OK, "", payload)


class CandidateObjective:
    def __init__(
        self,
        space: TaskSpace,
        evaluate: EvaluateFn,
        *,
        task: str,
        database: SearchDatabase | None = None,
        jobs: int = 1,
    ):
        self.space = space
        self.evaluate = evaluate
        self.task = task
        self.database = database
        self.jobs = max(1, jobs)
        self._memory: dict[str, dict[str, Any]] = {}  # without a database
        self._lock = threading.Lock()
        self.evaluated = 0  # sources actually sent to the evaluator
        self.reused = 0  # measurements served from the database / memory

    def __call__(self, config: Config) -> Outcome:
        return self.evaluate_batch([config])[0]

    def _known(self, digest: str) -> dict[str, Any] | None:
        if self.database is not None:
            return self.database.measurement(digest)
        return self._memory.get(digest)

    def _store(self, digest: str, source: str, record: dict[str, Any]) -> None:
        if self.database is not None:
            self.database.add_candidate(digest, self.task, self.space.name, source)
            self.database.add_measurement(digest, self.task, record)
        else:
            self._memory[digest] = record

    def evaluate_batch(self, configs: list[Config]) -> list[Outcome]:
        sources = [self.space.render(c) for c in configs]
        digests = [source_hash(s) for s in sources]
        records: dict[str, dict[str, Any]] = {}
        cached: set[str] = set()
        pending: dict[str, str] = {}
        for digest, source in zip(digests, sources, strict=True):
            known = self._known(digest)
            if known is not None:
                records[digest] = known
                cached.add(digest)
            else:
                pending.setdefault(digest, source)
        if pending:
            with ThreadPoolExecutor(max_workers=min(self.jobs, len(pending))) as pool:
                futures = {d: pool.submit(self._evaluate_one, d, s) for d, s in pending.items()}
                for digest, future in futures.items():
                    records[digest] = future.result()
            for digest, source in pending.items():  # database writes stay on this thread
                if not records[digest].get(
                    "evaluator_error"
                ):  # the evaluator's own failure: retried next time
                    self._store(digest, source, records[digest])
        self.evaluated += len(pending)
        self.reused += sum(1 for d in digests if d in cached)
        return [outcome_of(records[d], d, d in cached) for d in digests]

    def _evaluate_one(self, digest: str, source: str) -> dict[str, Any]:
        try:
            return dict(self.evaluate(source, f"{self.space.name}-{digest[:12]}"))
        except Exception as error:  # the evaluator reports candidate faults itself; this is its own failure
            message = f"evaluator error: {type(error).__name__}: {error}"
            return {"category": "crash", "correct": False, "message": message, "evaluator_error": True}
