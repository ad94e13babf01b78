"""The run report: `synth-torch report OUTPUT_DIR` (also written at the end of every run).

Writes OUTPUT_DIR/report.md with PNG plots in OUTPUT_DIR/report/ (yield over time, failure categories, per-op
yield, op and op-pair coverage, size distributions) and merges the numbers into OUTPUT_DIR/stats.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from synth_modules.report.data import load_run
from synth_modules.report.metrics import compute_stats
from synth_modules.report.plots import write_plots
from synth_modules.report.render import render_markdown
from synth_modules.run.store import (
    MANIFEST_FILE,
    REJECTED_FILE,
    STATS_FILE,
    atomic_write_json,
    atomic_write_text,
)

__all__ = ["compute_stats", "run_report", "write_report"]

REPORT_FILE = "report.md"
PLOTS_DIR = "report"


def catalog_op_names() -> list[str]:
    """The sampleable ops of the operator catalog: the denominator of op coverage."""
    import operators

    return [op.name for op in operators.all_ops(include_unsupported=False)]


def write_report(output_dir: str | Path, catalog: list[str] | None = None) -> Path:
    """Write report.md + plots for a run directory and merge its numbers into stats.json; returns report.md."""
    root = Path(output_dir)
    catalog = catalog if catalog is not None else catalog_op_names()
    records = load_run(root)
    stats = compute_stats(root, catalog=catalog)
    plots = write_plots(records, stats, root / PLOTS_DIR)
    report = root / REPORT_FILE
    atomic_write_text(report, render_markdown(records, stats, plots, root))
    stats_file = root / STATS_FILE
    previous: dict[str, Any] = {}
    if stats_file.exists():
        try:
            previous = json.loads(stats_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            previous = {}
    atomic_write_json(stats_file, {**previous, **stats})  # live-only keys (usage, cost) survive
    return report


def run_report(output_dir: str | Path) -> int:
    """`synth-torch report OUTPUT_DIR`: exit status 0 on success, 2 when OUTPUT_DIR is not a run directory."""
    root = Path(output_dir)
    if not (root / MANIFEST_FILE).exists() and not (root / REJECTED_FILE).exists():
        print(
            f"error: {root} is not a run directory (no {MANIFEST_FILE} or {REJECTED_FILE})", file=sys.stderr
        )
        return 2
    report = write_report(root)
    stats = json.loads((root / STATS_FILE).read_text(encoding="utf-8"))
    print(f"wrote {report} ({stats['accepted']}/{stats['samples']} accepted, plots in {root / PLOTS_DIR})")
    return 0
