"""GPU-sized tasks for the loop benchmark: the committed composer programs (tests/fixtures/pairs) as KernelBench
tasks with their inputs repeated along the first dimension (kernel_search.tasks.scaling), plus the research
pipeline's softmax / gemm / attention tasks.

    python benchmarks/kernel_loops_tasks.py OUT_DIR [--scale 1024]
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernel_search.loops.seed_pairs import task_source_from_export_row  # noqa: E402
from kernel_search.tasks.scaling import scale_task_source  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=int, default=1024)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [
        json.loads(line)
        for line in (ROOT / "tests/fixtures/pairs/pairs.jsonl").read_text().splitlines()
        if line
    ]
    number = 0
    for row in rows:
        number += 1
        source = scale_task_source(task_source_from_export_row(row), args.scale)
        (args.out / f"{number}_{row['entry_point']}.py").write_text(source, encoding="utf-8")
    for operation in ("softmax", "gemm", "attention"):
        number += 1
        source = resources.files("kernel_search.research").joinpath(f"tasks/{operation}.py").read_text()
        (args.out / f"{number}_{operation}.py").write_text(source, encoding="utf-8")
    print(f"{number} tasks in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
