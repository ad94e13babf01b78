"""Throughput of export-pairs on a CUDA GPU: warm workers vs a fresh interpreter per program.

    python benchmarks/export_pairs.py RUN_DIR --out WORK_DIR [--jobs 8] [--subset 40] [--json results.json]

Runs (each into its own PAIRS_DIR under WORK_DIR, so nothing is resumed):
  warm-N   all programs, N warm workers            -> verified/attempted, categories, pairs/min
  fresh-N  the first SUBSET programs, N workers, a new process per program
  warm-1   the first SUBSET programs, one warm worker
Prints one line per run and the warm/fresh ratio. Not a test: it needs a GPU and prints numbers.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_dir_parser
from synth_modules.export.pairs import ExportSettings, export_pairs, format_rejected


def _run(name: str, run_dir: Path, work: Path, **settings: object) -> dict:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    summary = export_pairs(run_dir, out, ExportSettings(progress=False, **settings))  # type: ignore[arg-type]
    result = {"run": name, **asdict(summary)}
    print(
        f"{name:>9}: {summary.verified}/{summary.attempted} verified "
        f"({100.0 * summary.verified / max(1, summary.attempted):.1f}%), {summary.seconds:.1f} s, "
        f"{summary.pairs_per_minute:.1f} pairs/min; rejected: {format_rejected(summary.rejected)}",
        flush=True,
    )
    return result


def main() -> None:
    parser = run_dir_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--subset", type=int, default=40)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    plan = [
        (f"warm-{args.jobs}", {"jobs": args.jobs}),
        (f"fresh-{args.jobs}", {"jobs": args.jobs, "limit": args.subset, "fresh_interpreter": True}),
        ("warm-1", {"jobs": 1, "limit": args.subset}),
    ]
    results = []
    for name, settings in plan:
        results.append(_run(name, args.run_dir, args.out, **settings))
        if args.json:  # after every run, so a cut-short session keeps what it measured
            args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        if len(results) == 2 and results[1]["pairs_per_minute"]:
            ratio = results[0]["pairs_per_minute"] / results[1]["pairs_per_minute"]
            print(f"warm/fresh throughput ratio with {args.jobs} workers: {ratio:.1f}x", flush=True)


if __name__ == "__main__":
    main()
