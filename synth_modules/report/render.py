"""report.md: the run's numbers as readable tables, with the plots embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synth_modules.report.data import RunRecords

_TOP = 15


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _num(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:.2f}G"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:g}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(records: RunRecords, stats: dict[str, Any], plots: dict[str, Path], root: Path) -> str:
    config = records.config
    lines = [f"# Run report: {root.name}", ""]
    lines += _table(
        ["", ""],
        [
            ["backend / model", f"{config.get('model_name', '?')}"],
            ["seed", config.get("seed", "?")],
            ["sampling", config.get("sampling", "?")],
            ["samples decided", stats["samples"]],
            ["accepted", stats["accepted"]],
            ["yield (accepted / samples)", _pct(stats["yield"])],
            ["first-try yield", _pct(stats["first_try_yield"])],
            ["valid per candidate", _pct(stats["valid_per_candidate"])],
            ["candidates (incl. repairs)", stats["candidates"]],
            ["time from first to last decision", f"{stats.get('decided_span_s', 0.0) / 60:.1f} min"],
        ],
    )
    lines += ["## Yield over time", "", _image(plots, "yield_over_time", root), ""]
    lines += _quality_section(stats)
    lines += ["## Failure categories", ""]
    every, final = stats["failures_by_category"], stats["final_failures_by_category"]
    rows = [
        [c, every.get(c, 0), final.get(c, 0)]
        for c in sorted(set(every) | set(final), key=lambda c: -every.get(c, 0))
    ]
    lines += _table(["category", "failed candidates", "samples lost"], rows) if rows else ["No failures.", ""]
    lines += [_image(plots, "failure_categories", root), ""]
    lines += _coverage_section(stats, plots, root)
    lines += _sizes_section(stats, plots, root)
    return "\n".join(lines)


def _image(plots: dict[str, Path], name: str, root: Path) -> str:
    path = plots[name]
    return f"![{name}]({path.relative_to(root).as_posix()})"


def _quality_section(stats: dict[str, Any]) -> list[str]:
    quality = stats["quality"]
    lines = ["## Quality gates", ""]
    lines += _table(
        ["rejected as", "candidates"],
        [
            ["contaminated (KernelBench lookalike)", quality["contaminated"]],
            ["duplicate (exact or near)", quality["duplicates"]],
            ["degenerate_output", quality["degenerate_output"]],
        ],
    )
    lines += [
        f"Accepted programs one op away from a KernelBench problem (near misses): {quality['near_misses_accepted']}.",
        "",
    ]
    audit = stats.get("audit")
    if audit:
        subset = "" if audit["sampled_every"] == 1 else f" (every {audit['sampled_every']}th program)"
        lines += [
            f"Audit of {audit['programs']} accepted program files{subset}, re-read from disk:",
            "",
            f"- matching a KernelBench L1/L2 problem after normalization: **{audit['contaminated']}**",
            f"- exact duplicates (canonical AST hash): **{audit['exact_duplicates']}**",
            f"- near duplicates (token-shingle Jaccard >= {audit['threshold']}): **{audit['near_duplicates']}**",
            f"- near misses (one op away): {audit['near_misses']}",
            "",
        ]
        for example in audit["contaminated_examples"][:5]:
            lines.append(f"  - {example['id']} resembles {example['kernelbench']} ({example['match']})")
        for example in audit["duplicate_examples"][:5]:
            lines.append(f"  - {example['id']} duplicates {example['duplicate_of']} ({example['kind']})")
        lines.append("")
    return lines


def _coverage_section(stats: dict[str, Any], plots: dict[str, Path], root: Path) -> list[str]:
    coverage = stats["coverage"]
    lines = ["## Coverage", ""]
    if "catalog_ops" in coverage:
        lines.append(
            f"Catalog ops used by accepted programs: **{coverage['catalog_ops_present']}/{coverage['catalog_ops']}"
            f" ({_pct(coverage['catalog_ops_present_fraction'])})**."
        )
        if "catalog_ops_present_in_code" in coverage:
            lines.append(
                f"Present in the code of accepted programs (normalized op in some forward()): "
                f"{coverage['catalog_ops_present_in_code']}/{coverage['catalog_ops_checkable_in_code']} "
                f"({_pct(coverage['catalog_ops_present_in_code_fraction'])})."
            )
        missing = coverage.get("catalog_ops_missing", [])
        if missing:
            lines.append(f"Never accepted: {', '.join(missing[:40])}{' ...' if len(missing) > 40 else ''}.")
        lines.append(
            f"Distinct op pairs in accepted programs: {coverage['distinct_op_pairs_accepted']} of "
            f"{coverage['catalog_pairs']} possible ({coverage['distinct_op_pairs_sampled']} sampled)."
        )
    else:
        lines.append(
            f"Distinct ops in accepted programs: {coverage['distinct_ops_accepted']}; distinct op pairs: "
            f"{coverage['distinct_op_pairs_accepted']} ({coverage['distinct_op_pairs_sampled']} sampled)."
        )
    lines += ["", _image(plots, "op_coverage", root), "", _image(plots, "op_pair_coverage", root), ""]
    per_op = stats.get("per_op", {})
    if per_op:
        ordered = sorted(per_op.items(), key=lambda kv: (kv[1]["yield"], kv[0]))
        lines += [f"### Per-op yield (lowest {min(_TOP, len(ordered))})", ""]
        lines += _table(
            ["op", "sampled", "accepted", "yield"],
            [[op, v["sampled"], v["accepted"], _pct(v["yield"])] for op, v in ordered[:_TOP]],
        )
        lines += [_image(plots, "per_op_yield", root), ""]
    return lines


def _sizes_section(stats: dict[str, Any], plots: dict[str, Path], root: Path) -> list[str]:
    lines = ["## Program sizes", ""]
    rows = []
    for key, summary in stats["sizes"].items():
        if summary:
            rows.append([key, summary["n"], _num(summary["min"]), _num(summary["median"]), _num(summary["mean"]),
                         _num(summary["p90"]), _num(summary["max"])])  # fmt: skip
        else:
            rows.append([key, 0, "-", "-", "-", "-", "-"])
    lines += _table(["", "n", "min", "median", "mean", "p90", "max"], rows)
    lines += [_image(plots, "sizes", root), ""]
    return lines
