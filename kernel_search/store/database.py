"""The embedded database of every search: runs, candidates (one row per distinct generated source) and trials.

DuckDB, one file per run directory (`kernel_search.duckdb`); `open_many` attaches several run directories'
files as one queryable view, so "best config per task across every run" is one SQL query. Identical candidate
sources share a row keyed by their SHA-256, which is also how a search benchmarks identical code only once.
The database is the resume record too: every trial is committed as it finishes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kernel_search.tuning.tuner import Trial

DB_FILE = "kernel_search.duckdb"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      VARCHAR PRIMARY KEY,   -- <task>/<space>/<strategy>/seed<seed>
    task        VARCHAR NOT NULL,
    space       VARCHAR NOT NULL,
    strategy    VARCHAR NOT NULL,
    seed        INTEGER NOT NULL,
    settings    JSON,                  -- budgets and strategy settings
    started_at  TIMESTAMP DEFAULT current_timestamp,
    finished_at TIMESTAMP,
    stop_reason VARCHAR,
    best_score  DOUBLE,
    best_config JSON
);
CREATE TABLE IF NOT EXISTS candidates (
    source_hash VARCHAR PRIMARY KEY,   -- sha256 of the candidate source
    task        VARCHAR NOT NULL,
    space       VARCHAR NOT NULL,
    source      VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    source_hash       VARCHAR PRIMARY KEY,  -- one measurement per distinct source, reused by every run
    task              VARCHAR NOT NULL,
    correct           BOOLEAN,
    category          VARCHAR,
    message           VARCHAR,
    runtime_us        DOUBLE,
    iqr_us            DOUBLE,
    speedup_vs_eager  DOUBLE,
    speedup_vs_compile DOUBLE,
    record            JSON,               -- the evaluator's whole result
    measured_at       TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS trials (
    run_id      VARCHAR NOT NULL,
    trial_index INTEGER NOT NULL,
    config_key  VARCHAR NOT NULL,
    config      JSON NOT NULL,
    score       DOUBLE,                -- NULL for failures and invalid configs
    status      VARCHAR NOT NULL,
    message     VARCHAR,
    seconds     DOUBLE,
    source_hash VARCHAR,               -- the candidate it produced, when the space renders code
    payload     JSON,
    PRIMARY KEY (run_id, trial_index)
);
"""


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _duckdb():
    try:
        import duckdb
    except ImportError:
        raise RuntimeError("kernel-search needs duckdb for its run database: pip install duckdb") from None
    return duckdb


class SearchDatabase:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = _duckdb().connect(str(self.path))
        self.connection.execute(SCHEMA)
        self._lock = threading.RLock()  # one connection, used by the threads that tune targets in parallel

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> SearchDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self.connection.execute(sql, list(params)).fetchall()

    # ----- runs ------------------------------------------------------------------------------------------------
    def start_run(self, run_id: str, task: str, space: str, strategy: str, seed: int, settings: dict) -> None:
        """Register a run (again, on resume: the row and its trials stay)."""
        self.query(
            "INSERT INTO runs (run_id, task, space, strategy, seed, settings) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO NOTHING",
            [run_id, task, space, strategy, seed, json.dumps(settings, default=str)],
        )

    def finish_run(
        self, run_id: str, stop_reason: str, best_score: float | None, best_config: dict | None
    ) -> None:
        self.query(
            "UPDATE runs SET finished_at = current_timestamp, stop_reason = ?, best_score = ?, best_config = ? "
            "WHERE run_id = ?",
            [stop_reason, best_score, json.dumps(best_config) if best_config is not None else None, run_id],
        )

    def is_finished(self, run_id: str) -> bool:
        rows = self.query("SELECT finished_at FROM runs WHERE run_id = ?", [run_id])
        return bool(rows and rows[0][0] is not None)

    # ----- trials ----------------------------------------------------------------------------------------------
    def add_trial(self, run_id: str, trial: Trial, source_hash: str | None = None) -> None:
        record = trial.to_record()
        self.query(
            "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                trial.index,
                trial.key,
                json.dumps(trial.config),
                record["score"],
                trial.status,
                trial.message,
                trial.seconds,
                source_hash,
                json.dumps(trial.payload, default=str),
            ],
        )

    def trials(self, run_id: str) -> list[Trial]:
        rows = self.query(
            "SELECT trial_index, config, score, status, message, seconds, payload FROM trials "
            "WHERE run_id = ? ORDER BY trial_index",
            [run_id],
        )
        return [
            Trial.from_record(
                {
                    "index": index,
                    "config": json.loads(config),
                    "score": score,
                    "status": status,
                    "message": message or "",
                    "seconds": seconds or 0.0,
                    "payload": json.loads(payload) if payload else {},
                }
            )
            for index, config, score, status, message, seconds, payload in rows
        ]

    # ----- candidates and their measurements -------------------------------------------------------------------
    def add_candidate(self, digest: str, task: str, space: str, source: str) -> None:
        self.query(
            "INSERT INTO candidates VALUES (?, ?, ?, ?) ON CONFLICT (source_hash) DO NOTHING",
            [digest, task, space, source],
        )

    def measurement(self, digest: str) -> dict[str, Any] | None:
        rows = self.query("SELECT record FROM measurements WHERE source_hash = ?", [digest])
        return json.loads(rows[0][0]) if rows else None

    def add_measurement(self, digest: str, task: str, record: dict[str, Any]) -> None:
        self.query(
            "INSERT OR REPLACE INTO measurements (source_hash, task, correct, category, message, runtime_us, "
            "iqr_us, speedup_vs_eager, speedup_vs_compile, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                digest,
                task,
                record.get("correct"),
                record.get("category"),
                str(record.get("message", ""))[:2000],
                record.get("runtime_us"),
                record.get("iqr_us"),
                record.get("speedup_vs_eager"),
                record.get("speedup_vs_compile"),
                json.dumps(record, default=str),
            ],
        )


def open_many(paths: Iterable[Path | str]):
    """One in-memory DuckDB connection with each run directory's database attached as db0, db1, ... and views
    `all_runs` and `all_trials` over the union, for queries across runs."""
    duckdb = _duckdb()
    connection = duckdb.connect()
    names = []
    for number, path in enumerate(paths):
        path = Path(path)
        file = path / DB_FILE if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"no kernel-search database at {file}")
        quoted = file.as_posix().replace("'", "''")
        connection.execute(f"ATTACH '{quoted}' AS db{number} (READ_ONLY)")
        names.append(f"db{number}")
    if not names:
        raise ValueError("open_many needs at least one run directory")
    for table in ("runs", "trials", "measurements"):
        union = " UNION ALL ".join(f"SELECT '{n}' AS db, * FROM {n}.{table}" for n in names)
        connection.execute(f"CREATE VIEW all_{table} AS {union}")
    return connection
