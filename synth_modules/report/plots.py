"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from synth_modules.report.data import RunRecords
from synth_modules.report.metrics import SIZE_KEYS, op_pairs, size_values, yield_timeline

_MAX_BARS = 60
_MAX_HEATMAP = 40


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _message(path: Path, title: str, text: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return _save(fig, path)


def plot_yield_over_time(records: RunRecords, path: Path) -> Path:
    timeline = yield_timeline(records)
    if not timeline["seconds"]:
        return _message(path, "Yield over time", "no decided samples")
    minutes = np.asarray(timeline["seconds"]) / 60.0
    decided = np.asarray(timeline["decided"])
    accepted = np.asarray(timeline["accepted"])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(minutes, decided, label="samples decided")
    ax.plot(minutes, accepted, label="accepted")
    ax.set_xlabel("minutes since first decision")
    ax.set_ylabel("samples")
    right = ax.twinx()
    right.plot(minutes, accepted / decided, color="tab:green", alpha=0.6, label="cumulative yield")
    right.set_ylim(0, 1.05)
    right.set_ylabel("yield")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left")
    ax.set_title("Yield over time")
    return _save(fig, path)


def _barh(path: Path, title: str, labels: list[str], values: list[float], xlabel: str) -> Path:
    if not labels:
        return _message(path, title, "nothing to show")
    labels, values = labels[:_MAX_BARS], values[:_MAX_BARS]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.22 * len(labels)))
    positions = np.arange(len(labels))
    ax.barh(positions, values)
    ax.set_yticks(positions, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _save(fig, path)


def plot_failure_categories(stats: dict[str, Any], path: Path) -> Path:
    final = stats.get("final_failures_by_category", {})
    every = stats.get("failures_by_category", {})
    categories = sorted(set(final) | set(every), key=lambda c: -every.get(c, 0))
    if not categories:
        return _message(path, "Failure categories", "no failures")
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.35 * len(categories)))
    positions = np.arange(len(categories))
    ax.barh(positions - 0.2, [every.get(c, 0) for c in categories], height=0.4, label="failed candidates")
    ax.barh(positions + 0.2, [final.get(c, 0) for c in categories], height=0.4, label="samples lost")
    ax.set_yticks(positions, categories, fontsize=8)
    ax.invert_yaxis()
    ax.legend()
    ax.set_title("Failure categories")
    return _save(fig, path)


def plot_per_op_yield(stats: dict[str, Any], path: Path) -> Path:
    per_op = stats.get("per_op", {})
    ordered = sorted(per_op.items(), key=lambda kv: (kv[1]["yield"], kv[0]))  # worst first
    labels = [f"{op} ({v['accepted']}/{v['sampled']})" for op, v in ordered]
    return _barh(
        path, "Per-op yield (worst first)", labels, [v["yield"] for _, v in ordered], "accepted / sampled"
    )


def plot_op_coverage(stats: dict[str, Any], path: Path) -> Path:
    coverage = stats.get("coverage", {})
    counts = dict(coverage.get("ops_accepted", {}))
    for op in coverage.get("catalog_ops_missing", []):
        counts.setdefault(op, 0)
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))  # least covered first
    return _barh(
        path,
        "Op coverage among accepted programs (least covered first)",
        [op for op, _ in ordered],
        [count for _, count in ordered],
        "accepted programs using the op",
    )


def plot_op_pair_coverage(records: RunRecords, path: Path) -> Path:
    pairs: Counter[tuple[str, str]] = Counter()
    ops: Counter[str] = Counter()
    for record in records.accepted:
        sampled = record.get("sampled_ops") or []
        ops.update(set(sampled))
        pairs.update(op_pairs(sampled))
    if not pairs:
        return _message(path, "Op-pair coverage", "no op pairs among accepted programs")
    names = sorted(op for op, _ in ops.most_common(_MAX_HEATMAP))
    position = {op: i for i, op in enumerate(names)}
    matrix = np.zeros((len(names), len(names)))
    for (a, b), count in pairs.items():
        if a in position and b in position:
            matrix[position[a], position[b]] = matrix[position[b], position[a]] = count
    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(np.log1p(matrix), cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    fig.colorbar(image, ax=ax, label="log(1 + programs using both)")
    covered = int((matrix[np.triu_indices(len(names), 1)] > 0).sum())
    total = len(names) * (len(names) - 1) // 2
    ax.set_title(f"Op-pair coverage: {covered}/{total} pairs of the {len(names)} most used ops")
    return _save(fig, path)


def plot_sizes(records: RunRecords, path: Path) -> Path:
    values = size_values(records)
    fig, axes = plt.subplots(1, len(SIZE_KEYS), figsize=(12, 3.5))
    for ax, key in zip(axes, SIZE_KEYS, strict=True):
        data = np.asarray([v for v in values[key] if v > 0])
        ax.set_title(key)
        if data.size == 0:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
            continue
        bins = (
            np.logspace(np.log10(data.min()), np.log10(data.max()) + 1e-9, 30)
            if data.max() > data.min()
            else 10
        )
        ax.hist(data, bins=bins)
        if data.max() > data.min():
            ax.set_xscale("log")
        ax.set_ylabel("programs")
    fig.suptitle("Size distributions of accepted programs")
    return _save(fig, path)


def write_plots(records: RunRecords, stats: dict[str, Any], folder: Path) -> dict[str, Path]:
    """All plots into `folder`; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "yield_over_time": plot_yield_over_time(records, folder / "yield_over_time.png"),
        "failure_categories": plot_failure_categories(stats, folder / "failure_categories.png"),
        "per_op_yield": plot_per_op_yield(stats, folder / "per_op_yield.png"),
        "op_coverage": plot_op_coverage(stats, folder / "op_coverage.png"),
        "op_pair_coverage": plot_op_pair_coverage(records, folder / "op_pair_coverage.png"),
        "sizes": plot_sizes(records, folder / "sizes.png"),
    }
