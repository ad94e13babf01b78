"""Validation throughput: warm sandbox workers vs a fresh interpreter per program, on the same programs.

Both modes run the full validation (static checks, eager twice, degenerate checks, torch.compile/Inductor,
compare) with the same isolation, `--workers` programs at a time. Warm mode imports torch and warms Inductor
once per worker and forks per program; fresh mode starts a new interpreter per program, which pays the torch
import and the first compile every time. Fresh mode runs on the first `--fresh-subset` programs and its rate
is extrapolated (it is the slow baseline), which the output says.

    .venv/bin/python benchmarks/validation_throughput.py                       # 100 composed programs
    .venv/bin/python benchmarks/validation_throughput.py --programs-dir DIR    # any program files
    .venv/bin/python benchmarks/validation_throughput.py --write-docs          # update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import datetime
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synth_modules.cli.validate import entry_point_for, expand_paths  # noqa: E402
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob  # noqa: E402
from synth_modules.types import Verdict  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- validation_throughput:start -->", "<!-- validation_throughput:end -->"


def composed_jobs(count: int, seed: int) -> list[ValidationJob]:
    """`count` programs from the built-in composer (UniformSampler + BuiltinBackend)."""
    from synth_modules.backends.builtin import BuiltinBackend
    from synth_modules.config import GeneratorConfig
    from synth_modules.program import make_entry_point
    from synth_modules.sampling import UniformSampler
    from synth_modules.types import GenerationRequest

    config = GeneratorConfig(seed=seed)
    sampler, backend = UniformSampler(config), BuiltinBackend(config)
    jobs: list[ValidationJob] = []
    index = 0
    while len(jobs) < count and index < 5 * count:
        sample = sampler.sample(index)
        index += 1
        request = GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id))
        try:
            gen = asyncio.run(backend.generate(request))
        except Exception as exc:  # report and move on: this measures the sandbox, not the composer
            print(f"  composer failed on sample {sample.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        jobs.append(
            ValidationJob(
                id=sample.id,
                source=gen.source,
                entry_point=gen.entry_point,
                expected_output_shapes=gen.expected_output_shapes,
            )
        )
    return jobs


def directory_jobs(directory: str, count: int) -> list[ValidationJob]:
    jobs = []
    for path in expand_paths([directory])[:count]:
        source = path.read_text()
        jobs.append(ValidationJob(id=path.stem, source=source, entry_point=entry_point_for(path, source)))
    return jobs


@dataclass
class Run:
    mode: str
    programs: int
    startup_s: float
    validate_s: float
    verdicts: list[Verdict]

    @property
    def wall_s(self) -> float:
        return self.startup_s + self.validate_s

    @property
    def per_minute(self) -> float:
        return 60.0 * self.programs / self.wall_s

    @property
    def steady_per_minute(self) -> float:
        return 60.0 * self.programs / self.validate_s

    @property
    def accepted(self) -> int:
        return sum(v.ok for v in self.verdicts)


def measure(mode: str, jobs: list[ValidationJob], workers: int, options: SandboxOptions) -> Run:
    options = dataclasses.replace(options, warm=mode == "warm")
    start = time.perf_counter()
    with SandboxPool(workers, options) as pool:
        pool.wait_ready()
        ready = time.perf_counter()
        verdicts = pool.validate_all(jobs)
        done = time.perf_counter()
    return Run(mode, len(jobs), ready - start, done - ready, verdicts)


def compile_summary(run: Run) -> str:
    """Where the time went: compile seconds and C++ kernels vs g++ builds, from the verdicts' checks."""
    compile_s = [v.timings["compile"] for v in run.verdicts if "compile" in v.timings]
    kernels = sum(v.checks.get("cpp_kernels", 0) for v in run.verdicts)
    builds = sum(v.checks.get("cpp_builds", 0) for v in run.verdicts)
    total = [v.timings.get("total", 0.0) for v in run.verdicts]
    if not compile_s:
        return "no program reached torch.compile"
    return (
        f"torch.compile: mean {statistics.mean(compile_s):.2f} s, median {statistics.median(compile_s):.2f} s "
        f"per program ({sum(compile_s) / max(sum(total), 1e-9):.0%} of the in-sandbox time); "
        f"C++ kernels {kernels} built in {builds} g++ runs"
    )


def _table(warm: Run, fresh: Run, workers: int, loadavg: tuple[float, float, float]) -> str:
    ratio = warm.per_minute / fresh.per_minute
    steady_ratio = warm.steady_per_minute / fresh.per_minute
    med_warm = statistics.median(v.seconds for v in warm.verdicts)
    med_fresh = statistics.median(v.seconds for v in fresh.verdicts)
    lines = [
        "| mode | programs | workers | startup s | validation s | programs/min | median s/program | accepted |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| warm workers (fork per program) | {warm.programs} | {workers} | {warm.startup_s:.1f} | "
        f"{warm.validate_s:.1f} | {warm.per_minute:.1f} (steady {warm.steady_per_minute:.1f}) | {med_warm:.2f} | "
        f"{warm.accepted}/{warm.programs} |",
        f"| fresh interpreter per program | {fresh.programs} (extrapolated) | {workers} | 0 | "
        f"{fresh.validate_s:.1f} | {fresh.per_minute:.1f} | {med_fresh:.2f} | {fresh.accepted}/{fresh.programs} |",
        "",
        f"Speed-up: {ratio:.1f}x end to end (warm-up included), {steady_ratio:.1f}x once warm. "
        f"Load average while measuring: {loadavg[0]:.1f} / {loadavg[1]:.1f} / {loadavg[2]:.1f} (1/5/15 min).",
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    block = f"{START}\n{section}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--programs-dir", default=None, help="validate these files instead of composing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--fresh-subset", type=int, default=20, help="programs run in fresh mode (extrapolated)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="per-program timeout (generous: shared box)"
    )
    parser.add_argument("--skip-fresh", action="store_true", help="warm mode only (compare compile settings)")
    parser.add_argument(
        "--no-batch-kernels",
        action="store_true",
        help="one g++ run per C++ kernel, as stock Inductor (default: one per compiled graph)",
    )
    parser.add_argument(
        "--cpu-vectorize",
        action=argparse.BooleanOptionalAction,
        default=SandboxOptions.cpu_vectorize,
        help="let Inductor vectorize CPU kernels",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.name}")
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    args = parser.parse_args()
    options = SandboxOptions(
        timeout_s=args.timeout,
        batch_cpu_kernels=not args.no_batch_kernels,
        cpu_vectorize=args.cpu_vectorize,
    )

    if args.programs_dir:
        jobs = directory_jobs(args.programs_dir, args.programs)
        source = f"files from {args.programs_dir}"
    else:
        jobs = composed_jobs(args.programs, args.seed)
        source = f"built-in composer, seed {args.seed}"
    cores = len(os.sched_getaffinity(0))
    print(
        f"{len(jobs)} programs ({source}), {args.workers} workers, {cores} usable CPUs; "
        f"batch_cpu_kernels={options.batch_cpu_kernels} cpu_vectorize={options.cpu_vectorize}"
    )
    load_before = os.getloadavg()
    warm = measure("warm", jobs, args.workers, options)
    print(f"warm:  startup {warm.startup_s:.1f} s, {warm.programs} programs in {warm.validate_s:.1f} s")
    print(compile_summary(warm))
    if args.skip_fresh:
        print(f"warm: {warm.per_minute:.1f} programs/min end to end, {warm.steady_per_minute:.1f} once warm")
        return 0
    fresh = measure("fresh", jobs[: args.fresh_subset], args.workers, options)
    print(f"fresh: {fresh.programs} programs in {fresh.validate_s:.1f} s (extrapolated to the full set)")
    load = tuple(max(a, b) for a, b in zip(load_before, os.getloadavg(), strict=True))
    disagreements = [
        (w.ok, f.ok)
        for w, f in zip(warm.verdicts[: fresh.programs], fresh.verdicts, strict=True)
        if w.ok != f.ok
    ]
    table = _table(warm, fresh, args.workers, load)  # type: ignore[arg-type]
    print()
    print(table)
    print(f"\nwarm vs fresh verdict disagreements on the shared subset: {len(disagreements)}")
    for run in (warm, fresh):
        failures = collections.Counter(v.category for v in run.verdicts if not v.ok)
        print(f"{run.mode} rejections by category: {dict(failures) or 'none'}")
        first = next((v for v in run.verdicts if not v.ok), None)
        if first is not None:
            print(f"  e.g. {first.stage}/{first.category}: {first.message[:300]}")
    if args.write_docs:
        section = (
            f"## Validation throughput (`benchmarks/validation_throughput.py`)\n\n"
            f"{args.date}, {os.cpu_count()} CPU cores, CPU only; {len(jobs)} programs ({source}); "
            f"full validation incl. torch.compile (Inductor) and the isolation layers of the sandbox. "
            f"Fresh mode ran the first {fresh.programs} programs and its rate is extrapolated. Other engineers "
            f"were using the same 2 cores during the run (see the load average), so absolute numbers are "
            f"pessimistic; the ratio is the point.\n\n{table}\n"
        )
        write_docs(section)
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
