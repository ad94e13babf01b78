"""`Tuner`: one search over a config space, whatever the strategy (the public API, DESIGN.md "Kernel search").

The Tuner owns everything a strategy should not: the evaluation budget and wall-clock budget, the seed, the
cache that keeps a config from being evaluated twice, the validity predicate, turning an objective's exception
or junk return into a recorded failure, the history, and logging. Strategies only propose (see
strategies/base.py). Higher scores are better; a failure scores -inf for the strategy and None in records.

Resuming: pass the trials of an interrupted run as `known_trials`. The strategy is rebuilt with the same seed
and re-proposes the same configs (it is deterministic given its scores); their recorded results are replayed
without calling the objective, and the search continues from where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from kernel_search.strategies import FAILURE, STRATEGIES, create_strategy
from kernel_search.tuning.search_space import Config, ConfigSpace, ValidityPredicate, config_key
from kernel_search.tuning.settings import PROPOSALS_PER_EVALUATION

log = logging.getLogger("kernel_search")

OK = "ok"
FAILED = "failed"  # the objective raised or returned no usable score
INVALID = "invalid"  # outside the space or rejected by the validity predicate (never evaluated)


@dataclass
class Outcome:
    """What an objective may return instead of a bare float: a score (None = failure) with its story."""

    score: float | None
    status: str = OK
    message: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trial:
    """One evaluated (or refused) config, as the history, the run directory and the database record it."""

    index: int
    config: Config
    score: float  # -inf for failures and invalid configs
    status: str
    message: str = ""
    seconds: float = 0.0
    replayed: bool = False
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return config_key(self.config)

    @property
    def succeeded(self) -> bool:
        return math.isfinite(self.score)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["score"] = self.score if self.succeeded else None
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Trial:
        score = record.get("score")
        return cls(
            index=int(record["index"]),
            config=dict(record["config"]),
            score=float(score) if score is not None else FAILURE,
            status=str(record.get("status", OK)),
            message=str(record.get("message", "")),
            seconds=float(record.get("seconds", 0.0)),
            replayed=bool(record.get("replayed", False)),
            payload=dict(record.get("payload") or {}),
        )


def _as_outcome(value: Any) -> Outcome:
    if isinstance(value, Outcome):
        outcome = value
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return Outcome(None, FAILED, f"objective returned {type(value).__name__} {value!r:.80}, not a number")
    else:
        outcome = Outcome(float(value))
    if outcome.score is not None and not math.isfinite(outcome.score):
        return Outcome(None, FAILED, f"objective returned {outcome.score}", outcome.payload)
    if outcome.score is None and outcome.status == OK:
        outcome.status = FAILED
    return outcome


class Tuner:
    def __init__(
        self,
        config_space: dict[str, list[Any]],
        objective: Callable[[Config], Any],
        strategy: str = "random",
        max_evaluations: int = 100,
        budget_s: float | None = None,
        seed: int = 0,
        *,
        is_valid: ValidityPredicate | None = None,
        strategy_options: dict[str, Any] | None = None,
        known_trials: Iterable[Trial] = (),
        on_trial: Callable[[Trial], None] | None = None,
    ):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
        if not isinstance(max_evaluations, int) or max_evaluations < 1:
            raise ValueError(f"max_evaluations must be a positive integer, got {max_evaluations!r}")
        if budget_s is not None and not budget_s > 0:
            raise ValueError(f"budget_s must be > 0 seconds (or None), got {budget_s!r}")
        if not callable(objective):
            raise ValueError("objective must be callable: config dict -> score (higher is better)")
        self.space = (
            config_space if isinstance(config_space, ConfigSpace) else ConfigSpace(config_space, is_valid)
        )
        self.objective = objective
        self.strategy_name = strategy
        self.max_evaluations = max_evaluations
        self.budget_s = budget_s
        self.seed = seed
        self.strategy_options = dict(strategy_options or {})
        self.on_trial = on_trial
        self._known = {t.key: t for t in known_trials if t.status != INVALID}
        self.trials: list[Trial] = []
        self._by_key: dict[str, Trial] = {}
        self.best_config: Config | None = None
        self.best_score: float | None = None
        self.stop_reason = ""
        self.strategy_info: dict[str, Any] = {}
        self._strategy = create_strategy(
            strategy, self.space, seed, self.strategy_options
        )  # bad options: now

    # ----- the public record -----------------------------------------------------------------------------------
    @property
    def evaluation_count(self) -> int:
        """Distinct configs the objective scored (replayed ones included; invalid and repeats excluded)."""
        return sum(1 for t in self.trials if t.status != INVALID)

    @property
    def history(self) -> list[tuple[Config, float]]:
        """(config, score) per evaluation in order; failures score -inf."""
        return [(t.config, t.score) for t in self.trials if t.status != INVALID]

    # ----- the search ------------------------------------------------------------------------------------------
    def tune(self) -> Config | None:
        """Run the search until a budget is spent or the strategy has nothing left; return the best config."""
        strategy = self._strategy
        proposal_limit = max(100, PROPOSALS_PER_EVALUATION * self.max_evaluations)
        proposals, spent_s = 0, 0.0
        log.info(
            "tune: strategy=%s seed=%d max_evaluations=%d budget_s=%s space=%d configs",
            self.strategy_name,
            self.seed,
            self.max_evaluations,
            self.budget_s,
            self.space.size,
        )
        try:
            while True:
                if self.evaluation_count >= self.max_evaluations:
                    self.stop_reason = "max_evaluations"
                    break
                if self.budget_s is not None and spent_s >= self.budget_s:
                    self.stop_reason = "budget_s"
                    break
                if proposals >= proposal_limit:
                    self.stop_reason = "proposal_limit"
                    break
                batch = strategy.propose()
                if not batch:
                    self.stop_reason = "exhausted"
                    break
                proposals += len(batch)
                spent_s += self._run_batch(strategy, batch)
        finally:
            self.strategy_info = strategy.describe()
            strategy.close()
        log.info(
            "tune: stopped (%s) after %d evaluations; best score %s config %s",
            self.stop_reason,
            self.evaluation_count,
            self.best_score,
            self.best_config,
        )
        return self.best_config

    def _run_batch(self, strategy: Any, batch: list[Config]) -> float:
        """Score a proposed batch (cache, replay, validity, objective) and tell the strategy; returns seconds."""
        results: list[tuple[Config, Trial | None]] = []
        fresh: list[Config] = []
        remaining = self.max_evaluations - self.evaluation_count
        for raw in batch:
            if not self.space.contains(raw):
                results.append((raw, self._record(raw, Outcome(None, INVALID, "not a config of this space"))))
                continue
            config = self.space.normalize(raw)
            key = config_key(config)
            if key in self._by_key:
                results.append((config, self._by_key[key]))
            elif not self.space.is_valid(config):
                results.append((config, self._record(config, Outcome(None, INVALID, "rejected by is_valid"))))
            elif key in self._known and remaining > 0:
                remaining -= 1
                results.append((config, self._replay(self._known[key])))
            elif remaining > 0 and key not in {config_key(c) for c in fresh}:
                remaining -= 1
                fresh.append(config)
                results.append((config, None))
            else:
                results.append((config, None))
        started = time.monotonic()
        outcomes = self._evaluate(fresh)
        seconds = time.monotonic() - started
        per_config = seconds / max(1, len(fresh))
        for config, outcome in zip(fresh, outcomes, strict=True):
            self._record(config, outcome, per_config)
        for config, _ in results:
            trial = self._by_key.get(config_key(config)) if isinstance(config, dict) else None
            if trial is not None:
                strategy.observe(config, trial.score)
        return seconds

    def _evaluate(self, configs: list[Config]) -> list[Outcome]:
        if not configs:
            return []
        batch_call = getattr(self.objective, "evaluate_batch", None)
        if callable(batch_call):
            try:
                values = list(batch_call([dict(c) for c in configs]))
                if len(values) != len(configs):
                    raise ValueError(
                        f"evaluate_batch returned {len(values)} results for {len(configs)} configs"
                    )
                return [_as_outcome(v) for v in values]
            except Exception as error:
                log.warning("objective batch failed: %s: %s", type(error).__name__, error)
                return [Outcome(None, FAILED, f"{type(error).__name__}: {error}") for _ in configs]
        outcomes = []
        for config in configs:
            try:
                outcomes.append(_as_outcome(self.objective(dict(config))))
            except Exception as error:  # an objective's failure is the config's failure, never the search's
                outcomes.append(Outcome(None, FAILED, f"{type(error).__name__}: {error}"))
        return outcomes

    def _replay(self, known: Trial) -> Trial:
        outcome = Outcome(
            known.score if known.succeeded else None, known.status, known.message, known.payload
        )
        return self._record(known.config, outcome, known.seconds, replayed=True)

    def _record(self, config: Any, outcome: Outcome, seconds: float = 0.0, replayed: bool = False) -> Trial:
        score = outcome.score if outcome.score is not None else FAILURE
        trial = Trial(
            index=len(self.trials),
            config=dict(config) if isinstance(config, dict) else {"<raw>": repr(config)},
            score=score,
            status=outcome.status,
            message=outcome.message,
            seconds=round(seconds, 4),
            replayed=replayed,
            payload=outcome.payload,
        )
        self.trials.append(trial)
        if isinstance(config, dict):
            self._by_key[trial.key] = trial
        if trial.succeeded and (self.best_score is None or trial.score > self.best_score):
            self.best_score, self.best_config = trial.score, dict(trial.config)
        level = logging.DEBUG if replayed else logging.INFO
        log.log(
            level,
            "trial %d %s score=%s %s%s",
            trial.index,
            trial.status,
            f"{trial.score:.6g}" if trial.succeeded else "-",
            trial.key,
            f" ({trial.message})" if trial.message else "",
        )
        if self.on_trial is not None and not replayed:
            self.on_trial(trial)
        return trial
