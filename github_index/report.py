"""Report: counts per stage (overall and per repository) and failures grouped by normalized message.

Reads the run directory's ledgers (index.jsonl from --generate-all, evaluated*.jsonl from --evaluate-all) and
writes report.json and a readable report.md.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from github_index.generate import INDEX_FILE
from synth_modules.run.store import atomic_write_json, atomic_write_text, read_jsonl

STAGE_COUNTS = (
    "modules_found",
    "extracted",
    "static_ok",
    "deduced",
    "evaluated",
    "eager_ok",
    "compiled_ok",
    "matched",
)
_AFTER_EAGER = {"degenerate", "compile", "compare", "done"}
_AFTER_COMPILE = {"compare", "done"}


def normalize_message(message: str) -> str:
    """Group key for an error: first line, numbers and generated names blanked, bounded length."""
    line = (message or "").strip().splitlines()[0] if message and message.strip() else "(no message)"
    line = re.sub(r"\b([A-Za-z]\w*)_[0-9a-f]{8}\b", r"\1", line)  # entry-point hash suffixes
    line = re.sub(r"0x[0-9a-f]+", "0x…", line)
    line = re.sub(r"\d+", "N", line)
    return line[:160]


def _eager_ok(verdict: dict[str, Any]) -> bool:
    stage = verdict.get("stage")
    return (
        bool(verdict.get("ok"))
        or stage in _AFTER_EAGER
        or (stage == "shape" and str(verdict.get("message", "")).startswith("compiled"))
    )


def _compiled_ok(verdict: dict[str, Any]) -> bool:
    stage = verdict.get("stage")
    return bool(verdict.get("ok")) or (stage in _AFTER_COMPILE and verdict.get("category") == "mismatch")


def load_evaluations(run_dir: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("evaluated*.jsonl")):
        for row in read_jsonl(path):
            rows[row["id"]] = row
    return rows


def build_report(run_dir: Path) -> dict[str, Any]:
    index = list(read_jsonl(run_dir / INDEX_FILE))
    evaluations = load_evaluations(run_dir)
    totals: Counter[str] = Counter()
    per_repo: dict[str, Counter[str]] = defaultdict(Counter)
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    categories: Counter[str] = Counter()
    for row in index:
        flags = {
            "modules_found": True,
            "extracted": bool(row.get("extracted")),
            "static_ok": bool(row.get("static_ok")),
            "deduced": bool(row.get("deduced")),
        }
        verdict = evaluations.get(row["id"]) if flags["deduced"] else None
        if verdict is not None:
            flags.update(
                evaluated=True,
                eager_ok=_eager_ok(verdict),
                compiled_ok=_compiled_ok(verdict),
                matched=bool(verdict.get("ok")),
            )
        failure = None
        if not flags["deduced"] and row.get("category"):
            failure = (row.get("stage", "?"), row["category"], row.get("message", ""))
        elif verdict is not None and not verdict.get("ok"):
            failure = (
                f"evaluate:{verdict.get('stage')}",
                verdict.get("category") or "?",
                verdict.get("message", ""),
            )
        if failure:
            stage, category, message = failure
            categories[category] += 1
            groups[(stage, category, normalize_message(message))].append(row["id"])
        for key, value in flags.items():
            if value:
                totals[key] += 1
                per_repo[row.get("repo", "?")][key] += 1
    found = totals["modules_found"]
    error_groups = [
        {"stage": s, "category": c, "message": m, "count": len(ids), "examples": ids[:3]}
        for (s, c, m), ids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return {
        **{key: totals[key] for key in STAGE_COUNTS},
        "matched_of_found": round(totals["matched"] / found, 4) if found else 0.0,
        "matched_of_deduced": round(totals["matched"] / totals["deduced"], 4) if totals["deduced"] else 0.0,
        "matched_of_evaluated": round(totals["matched"] / totals["evaluated"], 4)
        if totals["evaluated"]
        else 0.0,
        "categories": dict(categories.most_common()),
        "per_repo": [
            {"repo": repo, **{k: c[k] for k in STAGE_COUNTS}} for repo, c in sorted(per_repo.items())
        ],
        "errors": error_groups,
    }


def render_markdown(report: dict[str, Any], top: int = 25) -> str:
    lines = ["# github_index report", "", "| stage | count |", "| --- | ---: |"]
    lines += [f"| {key} | {report[key]} |" for key in STAGE_COUNTS]
    lines += [
        "",
        f"Matched / found: **{report['matched_of_found']:.1%}**; matched / deduced: "
        f"**{report['matched_of_deduced']:.1%}**; matched / evaluated: {report['matched_of_evaluated']:.1%}.",
        "",
        "## Per repository",
        "",
        "| repo | " + " | ".join(STAGE_COUNTS) + " |",
        "| --- |" + " ---: |" * len(STAGE_COUNTS),
    ]
    for row in report["per_repo"]:
        lines.append(f"| {row['repo']} | " + " | ".join(str(row[k]) for k in STAGE_COUNTS) + " |")
    lines += ["", "## Failure categories", "", "| category | count |", "| --- | ---: |"]
    lines += [f"| {c} | {n} |" for c, n in report["categories"].items()]
    lines += [
        "",
        f"## Top {top} error groups",
        "",
        "| count | stage | category | message |",
        "| ---: | --- | --- | --- |",
    ]
    for group in report["errors"][:top]:
        message = group["message"].replace("|", "\\|")
        lines.append(f"| {group['count']} | {group['stage']} | {group['category']} | {message} |")
    return "\n".join(lines) + "\n"


def write_report(run_dir: Path) -> dict[str, Any]:
    """Build and write run_dir/report.json and run_dir/report.md; returns the report."""
    report = build_report(run_dir)
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.md", render_markdown(report))
    return report
