"""export-pairs throughput on all visible GPUs vs one GPU, on the same programs.

    python benchmarks/export_multi_gpu.py RUN_DIR --out WORK_DIR [--limit 150] [--jobs-per-gpu 4] [--json r.json]

Runs export-pairs twice into fresh PAIRS_DIRs (nothing resumed): first with every visible GPU (`--jobs-per-gpu`
warm workers on each, default one: export-pairs' default), then with `--device cuda:0` and the same number of
workers on that one GPU, so any warm OS file cache favours the one-GPU run. For each it prints
verified/attempted, wall seconds, and two rates:
  end-to-end   verified pairs per minute of the whole command (worker start-up and warm-up included);
  steady       results per minute after the first one arrived (start-up excluded), read from the ledgers.
Then the N-GPU / 1-GPU ratio of both. Not a test: it needs CUDA GPUs and prints numbers.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_dir_parser
from synth_modules.export.pairs import (
    PAIRS_FILE,
    REJECTED_FILE,
    ExportSettings,
    export_pairs,
    format_rejected,
    visible_gpus,
)


class _LedgerClock(threading.Thread):
    """Watches a PAIRS_DIR's ledgers and notes when the first result line appears."""

    def __init__(self, out: Path):
        super().__init__(daemon=True)
        self.out = out
        self.first_result_at: float | None = None
        self.done = threading.Event()

    def _lines(self) -> int:
        total = 0
        for name in (PAIRS_FILE, REJECTED_FILE):
            path = self.out / name
            if path.exists():
                total += path.read_bytes().count(b"\n")
        return total

    def run(self) -> None:
        while not self.done.is_set() and self.first_result_at is None:
            if self._lines() > 0:
                self.first_result_at = time.perf_counter()
            time.sleep(0.05)


def _run(name: str, run_dir: Path, work: Path, device: str, limit: int | None, jobs: int) -> dict[str, Any]:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    clock = _LedgerClock(out)
    clock.start()
    started = time.perf_counter()
    summary = export_pairs(
        run_dir, out, ExportSettings(device=device, limit=limit, jobs=jobs, progress=False)
    )
    ended = time.perf_counter()
    clock.done.set()
    clock.join()
    first = clock.first_result_at or ended
    steady = (
        60.0 * (summary.attempted - 1) / (ended - first) if summary.attempted > 1 and ended > first else 0.0
    )
    verified_share = summary.verified / max(1, summary.attempted)
    result = {
        "run": name,
        "device": device,
        "jobs": jobs,
        "startup_s": round(first - started, 1),
        "steady_results_per_min": round(steady, 1),
        "steady_pairs_per_min": round(steady * verified_share, 1),
        **asdict(summary),
    }
    rejected = format_rejected(summary.rejected)
    print(
        f"{name:>6}: {summary.verified}/{summary.attempted} verified, {summary.seconds:.1f} s "
        f"(first result after {result['startup_s']} s); end-to-end {summary.pairs_per_minute:.1f} pairs/min, "
        f"steady {result['steady_pairs_per_min']:.1f} pairs/min; rejected: {rejected}; "
        f"GPU {summary.env.get('gpu_name', '?')}",
        flush=True,
    )
    return result


def main() -> None:
    parser = run_dir_parser(__doc__)
    parser.add_argument("--limit", type=int, default=None, help="export only the first N programs")
    parser.add_argument("--jobs-per-gpu", type=int, default=1, help="warm workers on each GPU")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    gpus = visible_gpus("cuda")
    if len(gpus) < 2:
        raise SystemExit(f"this benchmark compares several GPUs with one; {len(gpus)} visible")
    per_gpu = args.jobs_per_gpu
    many = _run(f"{len(gpus)}-gpu", args.run_dir, args.out, "cuda", args.limit, per_gpu * len(gpus))
    one = _run("1-gpu", args.run_dir, args.out, "cuda:0", args.limit, per_gpu)
    end_to_end = many["pairs_per_minute"] / one["pairs_per_minute"] if one["pairs_per_minute"] else 0.0
    steady = (
        many["steady_pairs_per_min"] / one["steady_pairs_per_min"] if one["steady_pairs_per_min"] else 0.0
    )
    print(f"{len(gpus)} GPUs vs 1: end-to-end {end_to_end:.2f}x, steady {steady:.2f}x")
    if args.json:
        args.json.write_text(json.dumps([many, one], indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
