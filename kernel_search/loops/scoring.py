"""How a loop scores a candidate: the evaluator, behind a measurement cache and an optional cheap first stage.

Identical sources are measured once (proposers repeat themselves, and the four loops share candidates): the
cache is in memory and, when given, the config search's embedded database (`candidates` / `measurements`,
keyed by the source's SHA-256), so a later run reuses what an earlier one measured. The cascade's first stage
is the same evaluator with the cheapest settings that still check correctness (no compiled baselines, the
minimum repetitions, no profile); only its survivors are timed in full.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from kernel_search.evaluator import EvalOptions, EvalResult, Evaluator, TimingSettings
from kernel_search.tasks import Task

SPACE_LABEL = "llm-loops"
EVALUATOR_ERROR = "evaluator error"


class MeasurementStore(Protocol):
    """The part of the config search's database the loops use (kernel_search.store.SearchDatabase)."""

    def add_candidate(self, digest: str, task: str, space: str, source: str) -> None: ...
    def measurement(self, digest: str) -> dict[str, Any] | None: ...
    def add_measurement(self, digest: str, task: str, record: dict[str, Any]) -> None: ...


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def screening_options(options: EvalOptions) -> EvalOptions:
    """The cheapest settings that still run every correctness check (the cascade's first stage)."""
    quick = TimingSettings(warmup=1, min_reps=30, max_reps=30, budget_s=0.0, flush_l2=False)
    return dataclasses.replace(options, baselines=(), timing=quick, profile_check=False)


class Scorer:
    def __init__(
        self, evaluator: Evaluator, store: MeasurementStore | None = None, *, max_parallel: int = 16
    ):
        self.evaluator = evaluator
        self.screener = Evaluator(evaluator.device, screening_options(evaluator.options))
        self.store = store
        # key -> the (possibly still running) evaluation: loops on several threads share one measurement
        self._memory: dict[tuple[str, str], Future[EvalResult]] = {}
        self._lock = threading.Lock()
        self.store_lock = threading.Lock()  # one database connection, loops on several threads
        self._slots = threading.BoundedSemaphore(max(1, max_parallel))  # evaluator processes at once
        self.evaluations = 0  # evaluator runs actually made (cache hits excluded)

    def _key(self, task: Task, source: str, stage: str) -> tuple[str, str]:
        return (f"{task.sha}:{stage}", source_digest(source))

    def _once(
        self, key: tuple[str, str], compute: Callable[[], tuple[EvalResult, bool]]
    ) -> tuple[EvalResult, bool]:
        """`compute()` for the first asker of `key`; everyone else (also while it runs) gets its result, cached."""
        with self._lock:
            future = self._memory.get(key)
            owner = future is None
            if owner:
                future = self._memory[key] = Future()
        assert future is not None
        if not owner:
            return future.result(), True
        try:
            result, cached = compute()
        except BaseException as error:
            with self._lock:
                del self._memory[key]
            future.set_exception(error)
            raise
        future.set_result(result)
        return result, cached

    def measure(self, task: Task, source: str, name: str) -> tuple[EvalResult, bool]:
        """(the full evaluation, whether it came from the cache)."""
        key = self._key(task, source, "full")

        def compute() -> tuple[EvalResult, bool]:
            if self.store is not None:
                with self.store_lock:
                    record = self.store.measurement(key[1])
                if record and record.get("task") == task.name:
                    return EvalResult.from_dict(record), True
            result = self._evaluate(self.evaluator, task, source, name)
            if self.store is not None and not result.message.startswith(EVALUATOR_ERROR):
                with self.store_lock:
                    self.store.add_candidate(key[1], task.name, SPACE_LABEL, source)
                    self.store.add_measurement(key[1], task.name, result.to_dict())
            return result, False

        return self._once(key, compute)

    def _evaluate(self, evaluator: Evaluator, task: Task, source: str, name: str) -> EvalResult:
        """The evaluator's verdict; its own failure (not the candidate's) is a crash that is not stored."""
        with self._slots:
            with self._lock:
                self.evaluations += 1
            try:
                return evaluator.evaluate(task, source, name)
            except Exception as error:
                message = f"{EVALUATOR_ERROR}: {type(error).__name__}: {error}"[:1000]
                return EvalResult.failure(task.name, name, "crash", message)

    def screen(self, task: Task, source: str, name: str) -> tuple[EvalResult, bool]:
        """The cheap correctness stage (never stored: its timing is not a measurement)."""
        with self._lock:
            full = self._memory.get(self._key(task, source, "full"))
        if full is not None and full.done() and full.exception() is None:
            return full.result(), True
        return self._once(
            self._key(task, source, "screen"),
            lambda: (self._evaluate(self.screener, task, source, name), False),
        )
