"""GPU evidence for the kernel evaluator: the hack corpus, the timing-noise figure (run on the device).

    python benchmarks/kernel_search_gpu.py corpus --out corpus.json [--jobs 4]
    python benchmarks/kernel_search_gpu.py noise TASKS CANDIDATES --out noise.json [--repeats 5] [--count 3]

`corpus` evaluates every corpus candidate on CUDA with the default evaluator and with the static checks off,
and records whether each outcome is the one its header expects. `noise` evaluates the same candidates
`--repeats` times (each a fresh worker process) and reports the spread of their median runtimes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from kernel_search_cases import load_cases, outcome  # noqa: E402

from kernel_search.evaluator import EvalOptions, Evaluator, TimingSettings  # noqa: E402
from kernel_search.tasks import load_task, load_tasks  # noqa: E402
from kernel_search.tasks.inductor_candidates import candidate_path  # noqa: E402


def run_corpus(args: argparse.Namespace) -> int:
    rows = []
    jobs = []
    for static in (True, False):
        evaluator = Evaluator(
            "cuda", EvalOptions(baselines=(), static_checks=static, cache_dir=args.cache_dir)
        )
        for case in load_cases():
            wanted = (case.expect if static else case.unchecked).get("cuda")
            if wanted:
                jobs.append((evaluator, case, static, wanted))

    def one(job):  # type: ignore[no-untyped-def]
        evaluator, case, static, wanted = job
        result = evaluator.evaluate(load_task(case.task_path), case.source, case.name)
        got = outcome(result.category, result.hack)
        return {"case": case.name, "static_checks": static, "expected": wanted, "got": got, "pass": got == wanted,
                "message": result.message[:300], "runtime_us": result.runtime_us, "seconds": result.seconds,
                "gpu": result.gpu, "flags": result.flags}  # fmt: skip

    with ThreadPoolExecutor(args.jobs) as pool:
        for row in pool.map(one, jobs):
            rows.append(row)
            print(f"{'PASS' if row['pass'] else 'FAIL'} {row['case']:28s} static={row['static_checks']!s:5s} "
                  f"{row['got']:36s} {row['seconds']:6.1f}s {row['message'][:120]}", flush=True)  # fmt: skip
            Path(args.out).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0 if all(r["pass"] for r in rows) else 1


def run_noise(args: argparse.Namespace) -> int:
    tasks = [t for t in load_tasks(args.tasks) if candidate_path(args.candidates, t).is_file()][: args.count]
    settings = TimingSettings()
    evaluator = Evaluator("cuda", EvalOptions(baselines=(), timing=settings, cache_dir=args.cache_dir))
    report = []

    def measure(task):  # type: ignore[no-untyped-def]
        source = candidate_path(args.candidates, task).read_text(encoding="utf-8")
        medians, eager = [], []
        for _ in range(args.repeats):
            result = evaluator.evaluate(task, source, task.name)
            if result.runtime_us is None:
                break
            medians.append(result.runtime_us)
            eager.append(result.baselines.get("eager"))
        entry = {
            "task": task.name,
            "medians_us": medians,
            "eager_medians_us": eager,
            "category": result.category,
        }
        if len(medians) == args.repeats:
            center = statistics.median(medians)
            entry["spread"] = (max(medians) - min(medians)) / center
            entry["eager_spread"] = (max(eager) - min(eager)) / statistics.median(eager)
        return entry

    with ThreadPoolExecutor(args.jobs) as pool:  # timing itself is one at a time (the device lock)
        for entry in pool.map(measure, tasks):
            report.append(entry)
            print(json.dumps(entry), flush=True)
            Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    corpus = sub.add_parser("corpus")
    corpus.add_argument("--out", required=True)
    corpus.add_argument("--jobs", type=int, default=4)
    corpus.add_argument("--cache-dir", default=None)
    noise = sub.add_parser("noise")
    noise.add_argument("tasks")
    noise.add_argument("candidates")
    noise.add_argument("--out", required=True)
    noise.add_argument("--repeats", type=int, default=5)
    noise.add_argument("--count", type=int, default=3)
    noise.add_argument("--jobs", type=int, default=1)
    noise.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    started = time.monotonic()
    code = run_corpus(args) if args.command == "corpus" else run_noise(args)
    print(f"{args.command}: {time.monotonic() - started:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
