"""Drive searches into a run directory: every target (a task or a pair with its space) times every strategy.

Each (target, strategy) is one run in the database, `<target>/<space>/<strategy>/seed<seed>`. A finished run
is skipped when the command is repeated; an interrupted one resumes (its committed trials are replayed into a
new Tuner with the same seed), so a run killed at any point loses at most the evaluations in flight. All runs
of a target share one `CandidateObjective`, so identical candidate code is measured once for all strategies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernel_search.spaces.base import SpaceUnavailable, TaskSpace
from kernel_search.store.database import SearchDatabase
from kernel_search.store.rundir import RunDirectory
from kernel_search.tuning.objective import CandidateObjective, EvaluateFn
from kernel_search.tuning.report import write_summary
from kernel_search.tuning.search_space import ConfigSpace
from kernel_search.tuning.tuner import Trial, Tuner

log = logging.getLogger("kernel_search")


@dataclass
class Target:
    """One thing to tune: a name, a way to build its space, and a way to evaluate its candidates."""

    name: str
    make_space: Callable[[], TaskSpace]
    make_evaluate: Callable[[], EvaluateFn]


@dataclass
class TuneRequest:
    space: str
    strategies: list[str]
    max_evaluations: int
    budget_s: float | None = None
    seed: int = 0
    jobs: int = 1
    parallel_targets: int = 1  # targets tuned at once
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # what else the CLI was asked (for metadata.json)


def _history_entry(database: SearchDatabase, run_id: str) -> dict[str, Any]:
    return {"run_id": run_id, "trials": [t.to_record() for t in database.trials(run_id)]}


def run_targets(
    targets: list[Target], request: TuneRequest, out: Path | str, progress: Any = None
) -> dict[str, Any]:
    """Tune every target with every strategy into `out`; returns the best-result record.

    `request.parallel_targets` > 1 tunes that many targets at once (threads; each evaluation is its own
    process), so one target's compiles overlap another's GPU timing."""
    rundir = RunDirectory(out)
    database = rundir.open({**asdict(request), "targets": [t.name for t in targets]})
    run_ids: dict[str, list[str]] = {}
    history_lock = threading.Lock()

    def write_history() -> None:
        with history_lock:
            ids = [r for t in targets for r in run_ids.get(t.name, [])]
            rundir.write_history([_history_entry(database, r) for r in ids])

    def tune_target(target: Target) -> None:
        try:
            space = target.make_space()
        except SpaceUnavailable as error:
            log.warning("%s: %s space unavailable: %s", target.name, request.space, error)
            if progress is not None:
                progress.update(request.max_evaluations * len(request.strategies))
            return
        objective = CandidateObjective(
            space, target.make_evaluate(), task=target.name, database=database, jobs=request.jobs
        )
        for strategy in request.strategies:
            run_id = f"{target.name}/{space.name}/{strategy}/seed{request.seed}"
            run_ids.setdefault(target.name, []).append(run_id)
            if database.is_finished(run_id):
                log.info("%s: finished earlier, skipped", run_id)
                if progress is not None:
                    progress.update(request.max_evaluations)
                continue
            _tune_one(database, run_id, target.name, space, objective, strategy, request, progress)
            write_history()

    try:
        if request.parallel_targets > 1:
            with ThreadPoolExecutor(max_workers=request.parallel_targets) as pool:
                list(pool.map(tune_target, targets))  # re-raises a target's error here
        else:
            for target in targets:
                tune_target(target)
        write_history()
        best = write_summary(database, rundir.results_dir)
        rundir.write_best(best)
        return best
    finally:
        database.close()
        rundir.close()


def _tune_one(
    database: SearchDatabase,
    run_id: str,
    target: str,
    space: TaskSpace,
    objective: CandidateObjective,
    strategy: str,
    request: TuneRequest,
    progress: Any,
) -> None:
    known: list[Trial] = database.trials(run_id)
    if known:
        log.info("%s: resuming after %d recorded trials", run_id, len(known))
    options = request.strategy_options.get(strategy, {})
    database.start_run(
        run_id,
        target,
        space.name,
        strategy,
        request.seed,
        {"max_evaluations": request.max_evaluations, "budget_s": request.budget_s, "options": options},
    )
    best: list[float | None] = [None]

    def record(trial: Trial) -> None:
        database.add_trial(run_id, trial, trial.payload.get("source_hash"))
        if trial.succeeded and (best[0] is None or trial.score > best[0]):
            best[0] = trial.score
        if progress is not None and trial.status != "invalid":
            progress.update(1)
            progress.set_postfix_str(f"{target[:28]} {strategy} best={best[0] or 0:.3f}x")

    tuner = Tuner(
        ConfigSpace(space.parameters(), space.is_valid),
        objective,
        strategy=strategy,
        max_evaluations=request.max_evaluations,
        budget_s=request.budget_s,
        seed=request.seed,
        strategy_options=options,
        known_trials=known,
        on_trial=record,
    )
    tuner.tune()
    if progress is not None:  # replayed trials, and a run that stopped early, still fill their share
        new = sum(1 for t in tuner.trials if not t.replayed and t.status != "invalid")
        progress.update(max(0, request.max_evaluations - new))
    for trial in tuner.trials:  # replayed trials are already in the database; only renumbering could differ
        if trial.replayed:
            database.add_trial(run_id, trial, trial.payload.get("source_hash"))
    database.finish_run(run_id, tuner.stop_reason, tuner.best_score, tuner.best_config)
