"""Do LLM calls overlap sandbox validation? End-to-end wall time vs max(LLM-bound, validation-bound) time.

A loopback OpenAI-compatible server (tests/llm_servers.py) answers every request after --delay seconds with a
valid program. For N samples we measure, each in a fresh output directory (so no response cache is shared):
  LLM-bound         the N backend.generate calls alone, at the run's max_concurrency;
  validation-bound  the same N programs validated alone by the run's executor (pool start-up included, as in a run);
  end-to-end        run_generation(model_name=local:...) over N samples (its own wall clock, before the report).
Perfect overlap gives end-to-end = max(LLM-bound, validation-bound); the goal is a ratio <= 1.15.

    .venv/bin/python benchmarks/llm_overlap.py --samples 24 --workers 2 --concurrency 1 4 --balanced [--write-docs]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import torch  # noqa: E402
from llm_servers import LoopbackLLMServer, RecordedRequest, Reply, program_answer, valid_program  # noqa: E402

from synth_modules.backends.registry import create_backend  # noqa: E402
from synth_modules.config import GeneratorConfig  # noqa: E402
from synth_modules.executors import create_executor  # noqa: E402
from synth_modules.program import make_entry_point  # noqa: E402
from synth_modules.run.pipeline import create_sampler, run_generation  # noqa: E402
from synth_modules.sandbox.api import ValidationJob  # noqa: E402
from synth_modules.types import Generation, GenerationRequest  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- llm_overlap:start -->", "<!-- llm_overlap:end -->"


class ProgramResponder:
    """Answers with a valid program chosen by a hash of the prompt, so every phase (and every rerun) hands out
    the same programs whatever order the requests arrive in."""

    def __call__(self, request: RecordedRequest) -> Reply:
        variant = int(hashlib.sha256(request.prompt_text.encode()).hexdigest()[:8], 16)
        source, pattern = valid_program(variant)
        return Reply(program_answer(source, pattern))


def make_config(base_url: str, out: Path, args: argparse.Namespace, concurrency: int) -> GeneratorConfig:
    return GeneratorConfig(
        model_name="local:bench-model",
        base_url=base_url,
        num_total_samples=args.samples,
        num_worker=args.workers,
        max_concurrency=concurrency,
        max_retries=0,
        output_dir=str(out),
        progress=False,
        contamination="off",  # gates are not what is measured here
        dedup=False,
        seed=args.seed,
    )


def llm_bound(config: GeneratorConfig) -> tuple[float, list[Generation]]:
    sampler = create_sampler(config)
    samples = [sampler.sample(i) for i in range(config.num_total_samples)]
    requests = [GenerationRequest(s, make_entry_point(s.sampled_ops, s.id)) for s in samples]
    backend = create_backend(config)

    async def main() -> list[Generation]:
        try:
            return await asyncio.gather(*(backend.generate(r) for r in requests))
        finally:
            await backend.aclose()

    started = time.perf_counter()
    generations = asyncio.run(main())
    return time.perf_counter() - started, generations


def validation_bound(config: GeneratorConfig, generations: list[Generation]) -> tuple[float, int]:
    started = time.perf_counter()
    executor = create_executor(config)
    try:
        futures = [
            executor.submit(ValidationJob(id=f"bench-{i}", source=g.source, entry_point=g.entry_point))
            for i, g in enumerate(generations)
        ]
        wait(futures)
        valid = sum(1 for f in futures if f.result().ok)
    finally:
        executor.close()
    return time.perf_counter() - started, valid


def end_to_end(config: GeneratorConfig) -> tuple[float, int]:
    summary = run_generation(config)
    return summary.wall_s, summary.accepted


def write_docs(rows: list[dict], args: argparse.Namespace) -> None:
    lines = [
        START,
        "## LLM calls overlapped with validation (`benchmarks/llm_overlap.py`)",
        "",
        f"Loopback OpenAI-compatible server answering each request with a valid program after the delay shown; "
        f"{args.samples} samples, `num_worker={args.workers}`, warm sandbox workers, gates off; machine: "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, torch {torch.__version__}, date "
        f"{dt.date.today().isoformat()}. Each phase starts from an empty output directory (no response cache "
        "shared); the validation-bound time includes starting the worker pool, as a run does. The balanced row "
        "stretches the server delay so that the LLM-bound time matches the validation-bound time: the case where "
        "missing overlap would show most (a serial pipeline would score about 2.0 there).",
        "",
        "| scenario | delay s | max_concurrency | LLM-bound s | validation-bound s | end-to-end s | accepted "
        "| ratio e2e / max | load avg (1 min) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['scenario']} | {row['delay']:.2f} | {row['concurrency']} | {row['llm']:.1f} | "
            f"{row['validation']:.1f} | {row['e2e']:.1f} | {row['accepted']}/{args.samples} | "
            f"**{row['ratio']:.2f}** | {row['load']:.1f} |"
        )
    lines += [
        "",
        "Goal: ratio <= 1.15. Load average is the machine's during the scenario (other engineers were using "
        "the 2 cores while these numbers were taken, so phases of one scenario ran under different load: a "
        "ratio below 1 means the machine got quieter between phases).",
        "",
        f"Command: `.venv/bin/python benchmarks/llm_overlap.py {' '.join(sys.argv[1:])}`",
        END,
    ]
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    block = "\n".join(lines)
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.DOTALL)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")
    print(f"wrote {DOCS}")


def run_scenario(
    server: LoopbackLLMServer, args: argparse.Namespace, scenario: str, delay: float, concurrency: int
) -> dict:
    """LLM-bound, validation-bound and end-to-end back to back, so all three see similar machine load."""
    server.delay_s = delay
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="llm_overlap_") as scratch:
        root = Path(scratch)
        url = server.openai_base_url
        llm_s, generations = llm_bound(make_config(url, root / "llm", args, concurrency))
        print(f"[{scenario}] LLM-bound: {llm_s:.1f} s for {len(generations)} answers", flush=True)
        validation_s, valid = validation_bound(make_config(url, root / "val", args, concurrency), generations)
        print(f"[{scenario}] validation-bound: {validation_s:.1f} s ({valid} valid)", flush=True)
        loads.append(os.getloadavg()[0])
        e2e_s, accepted = end_to_end(make_config(url, root / "e2e", args, concurrency))
        loads.append(os.getloadavg()[0])
    ratio = e2e_s / max(llm_s, validation_s)
    print(
        f"[{scenario}] end-to-end: {e2e_s:.1f} s, accepted {accepted}/{args.samples}; "
        f"ratio to max(LLM, validation) = {ratio:.2f} (goal <= 1.15)",
        flush=True,
    )
    return dict(
        scenario=scenario,
        delay=delay,
        concurrency=concurrency,
        llm=llm_s,
        validation=validation_s,
        e2e=e2e_s,
        accepted=accepted,
        ratio=ratio,
        load=sum(loads) / len(loads),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="max_concurrency values")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the server takes per answer")
    parser.add_argument(
        "--balanced", action="store_true", help="add a scenario whose LLM-bound time equals validation's"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-docs", action="store_true", help=f"record the table in {DOCS.name}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with LoopbackLLMServer("openai", responder=ProgramResponder(), delay_s=args.delay) as server:
        for concurrency in args.concurrency:
            rows.append(run_scenario(server, args, "fixed delay", args.delay, concurrency))
        if args.balanced:
            # one request at a time, each taking (validation time / N): LLM-bound ~= validation-bound
            delay = max(args.delay, rows[0]["validation"] / args.samples)
            rows.append(run_scenario(server, args, "balanced", delay, 1))
    if args.write_docs:
        write_docs(rows, args)
    return 0 if all(row["ratio"] <= 1.15 for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
