"""The run directory of `kernel-search tune` (DESIGN.md "Kernel search"):

    metadata.json                 what was asked (tasks, space, strategies, budgets), versions, GPU, resumes
    run.log                       the kernel_search logger, appended across resumes
    kernel_search.duckdb          every run, candidate, measurement and trial (see database.py)
    search/search_history.json    every trial of every (task, strategy) run, in order
    results/best_result.json      the best config per task and strategy, with its measurement
    results/summary.md            tables and plots (results/*.png)

A second `tune` into the same directory resumes it; one asking for another space is refused.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from kernel_search.store.database import DB_FILE, SearchDatabase

_PACKAGES = ("torch", "triton", "duckdb", "helion")


def write_json(path: Path, data: Any) -> None:
    """Atomically (write a temporary file, then rename), so a kill never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, default=str)
            stream.write("\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def environment() -> dict[str, Any]:
    versions: dict[str, Any] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # a broken CUDA setup is recorded as no GPU, not a crash of the run
        gpu = None
    return {"versions": versions, "gpu": gpu, "host": platform.node(), "cpu_count": os.cpu_count()}


class RunDirectory:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.metadata_path = self.root / "metadata.json"
        self.history_path = self.root / "search" / "search_history.json"
        self.best_path = self.root / "results" / "best_result.json"
        self.summary_path = self.root / "results" / "summary.md"
        self.results_dir = self.root / "results"
        self.log_path = self.root / "run.log"
        self._log_handler: logging.Handler | None = None

    def open(self, request: dict[str, Any]) -> SearchDatabase:
        """Create or resume: refuse a directory holding a run of another space; start logging to run.log."""
        self.root.mkdir(parents=True, exist_ok=True)
        metadata: dict[str, Any] = {}
        if self.metadata_path.is_file():
            metadata = json.loads(self.metadata_path.read_text(encoding="utf-8"))
            previous = metadata.get("request", {}).get("space")
            if previous and previous != request.get("space"):
                raise ValueError(
                    f"{self.root} holds a run of space {previous!r}; use another --out for space {request.get('space')!r}"
                )
            metadata.setdefault("resumed_at", []).append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        else:
            metadata["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        metadata["request"] = request
        metadata["environment"] = environment()
        write_json(self.metadata_path, metadata)
        self._start_log()
        return SearchDatabase(self.root / DB_FILE)

    def _start_log(self) -> None:
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger = logging.getLogger("kernel_search")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        self._log_handler = handler

    def close(self) -> None:
        if self._log_handler is not None:
            logging.getLogger("kernel_search").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def write_history(self, runs: list[dict[str, Any]]) -> None:
        write_json(self.history_path, {"runs": runs})

    def write_best(self, best: dict[str, Any]) -> None:
        write_json(self.best_path, best)
