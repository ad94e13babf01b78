"""The generation pipeline: sample -> write -> validate -> gate -> store, concurrent but committed in order.

Samples are processed concurrently (LLM calls overlap sandbox validation), but their outcomes are committed to
the run store strictly in sample-index order. That makes the accepted set a function of the seed and config
alone (whichever executor ran it, however slow each sample was), lets stateful gates (dedup) and the coverage
sampler see a deterministic history, and keeps resume simple: a sample is done iff the ledgers say so.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.backends.base import Backend
from synth_modules.backends.registry import create_backend
from synth_modules.config import GeneratorConfig
from synth_modules.executors import ValidationExecutor, create_executor
from synth_modules.gates import build_gates
from synth_modules.gates.base import Gate, GateInput
from synth_modules.program import make_entry_point
from synth_modules.run.progress import Progress, summary_table
from synth_modules.run.run_info import collect_run_info
from synth_modules.run.stats import StatsTracker
from synth_modules.run.store import RunState, RunStore
from synth_modules.sampling import Sampler, sample_dtype, sample_id
from synth_modules.sandbox.api import ValidationJob
from synth_modules.types import (
    Category,
    Generation,
    GenerationError,
    GenerationRequest,
    RepairContext,
    Sample,
    Stage,
    Verdict,
)

STATS_INTERVAL_S = 5.0


def create_sampler(config: GeneratorConfig) -> Sampler:
    if config.sampling == "coverage":
        from synth_modules.sampling.coverage import CoverageSampler

        return CoverageSampler(config)
    from synth_modules.sampling import UniformSampler

    return UniformSampler(config)


@dataclass
class Attempt:
    """One candidate for a sample and how it fared."""

    attempt: int
    verdict: Verdict
    generation: Generation | None = None
    gate_details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    sample: Sample
    attempts: list[Attempt]

    @property
    def accepted(self) -> Attempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.verdict.ok else None


@dataclass
class RunSummary:
    output_dir: str
    samples: int
    accepted: int
    rejected: int
    skipped: int
    wall_s: float
    stats: dict[str, Any]


def _split_gates(gates: list[Gate]) -> tuple[list[Gate], list[Gate], list[Gate]]:
    """(source-only, after-validation, at-commit) gates.

    Stateless gates that read only the source (contamination) run before validation: the cheap check first.
    Other stateless gates run as soon as a candidate validates; both may trigger a repair. Stateful ones
    (dedup) must run at commit time, in index order.
    """
    source_only = [g for g in gates if not g.stateful and not g.needs_verdict]
    after_validation = [g for g in gates if not g.stateful and g.needs_verdict]
    stateful = [g for g in gates if g.stateful]
    return source_only, after_validation, stateful


def _gate_input(sample_id_: str, generation: Generation, verdict: Verdict) -> GateInput:
    return GateInput(
        id=sample_id_,
        entry_point=generation.entry_point,
        source=generation.source,
        final_pattern=generation.final_pattern,
        verdict=verdict,
    )


def _run_gates(gates: list[Gate], item: GateInput) -> tuple[Verdict | None, dict[str, Any]]:
    """Apply gates in order; return a rejecting verdict (or None) and the merged details."""
    details: dict[str, Any] = {}
    for gate in gates:
        started = time.perf_counter()
        decision = gate.check(item)
        item.verdict.timings[f"gate_{gate.name}"] = round(time.perf_counter() - started, 6)
        if decision.details:
            details[gate.name] = decision.details
            if decision.details.get("near_miss"):
                details["near_miss"] = decision.details["near_miss"]
        if not decision.keep:
            verdict = Verdict.reject(
                Stage.GATE,
                decision.category or Category.CONTAMINATED,
                f"{gate.name}: {decision.reason}",
                seconds=item.verdict.seconds,
                timings=item.verdict.timings,
            )
            return verdict, details
    return None, details


class GenerationRun:
    """One invocation of the generator over an output directory."""

    def __init__(self, config: GeneratorConfig):
        self.config = config
        self.backend: Backend = create_backend(config)  # a missing API key fails here, before any work
        self.store = RunStore.open(config, collect_run_info(config))
        self.state: RunState = self.store.load_state()
        self.sampler: Sampler = create_sampler(config)
        self.gates = build_gates(config)
        self.source_gates, self.validated_gates, self.stateful_gates = _split_gates(self.gates)
        self.stats = StatsTracker()
        self.debug_dir = (config.output_path / config.debug_dir) if config.debug_dir else None
        self._committed_upto = -1  # highest sample index whose outcome is committed
        self._commit_event = asyncio.Event()

    # ----- startup -----------------------------------------------------------------------------------------
    def _replay_history(self) -> None:
        """Feed what earlier runs decided to the stateful parts (dedup, coverage sampler), in index order."""
        for record in self.state.accepted.values():
            path = self.store.root / record["file"]
            source = path.read_text(encoding="utf-8")
            item = GateInput(
                id=record["id"],
                entry_point=record["entry_point"],
                source=source,
                final_pattern=record.get("final_pattern", []),
                verdict=Verdict(ok=True, stage=str(Stage.DONE)),
            )
            for gate in self.gates:
                gate.admit(item)
        if not hasattr(self.sampler, "lag"):
            return
        for index in range(self.config.num_total_samples):
            sid = sample_id(self.config.seed, index)
            if sid not in self.state.done_ids:
                continue
            sample = self.sampler.sample(index)
            record = self.state.accepted.get(sid)
            self.sampler.observe(
                sample, record is not None, record.get("final_pattern", []) if record else []
            )

    # ----- one sample ----------------------------------------------------------------------------------------
    async def _validate(
        self, executor: ValidationExecutor, sample: Sample, attempt: int, generation: Generation
    ) -> Verdict:
        job = ValidationJob(
            id=f"{sample.id}-a{attempt}",
            source=generation.source,
            entry_point=generation.entry_point,
            expected_output_shapes=generation.expected_output_shapes,
            seed=sample.seed,
        )
        return await asyncio.wrap_future(executor.submit(job))

    async def _validate_and_gate(
        self, executor: ValidationExecutor, sample: Sample, attempt: int, generation: Generation
    ) -> tuple[Verdict, dict[str, Any]]:
        """Source-only gates, then the sandbox, then the gates that read its verdict; cheapest first."""
        pending = Verdict(ok=True, stage=str(Stage.STATIC))
        rejection, gate_details = _run_gates(self.source_gates, _gate_input(sample.id, generation, pending))
        if rejection is not None:
            return rejection, gate_details
        verdict = await self._validate(executor, sample, attempt, generation)
        verdict.timings.update(pending.timings)
        if verdict.ok:
            rejection, details = _run_gates(self.validated_gates, _gate_input(sample.id, generation, verdict))
            gate_details.update(details)
            verdict = rejection or verdict
        return verdict, gate_details

    async def _process(self, executor: ValidationExecutor, index: int) -> Outcome:
        lag = getattr(self.sampler, "lag", None)
        if lag is not None:
            await self._wait_committed(index - lag)
        sample = self.sampler.sample(index)
        attempts: list[Attempt] = []
        repair: RepairContext | None = None
        for attempt in range(self.config.max_retries + 1):
            request = GenerationRequest(
                sample=sample,
                entry_point=make_entry_point(sample.sampled_ops, sample.id),
                attempt=attempt,
                repair=repair,
                dtype=sample_dtype(self.config.dtype, sample.seed, sample.index),
            )
            started = time.perf_counter()
            try:
                generation = await self.backend.generate(request)
            except GenerationError as error:
                stage = Stage.EXTRACT if error.category == Category.EXTRACTION_FAILURE else Stage.GENERATE
                verdict = Verdict.reject(
                    stage, error.category, error.message, seconds=time.perf_counter() - started
                )
                attempts.append(Attempt(attempt, verdict))
                self._debug_dump(sample, attempt, None, verdict, error.response)
                if error.category != Category.EXTRACTION_FAILURE or not self.backend.supports_repair:
                    break
                repair = RepairContext(error.response, str(error.category), error.message)
                continue
            verdict, gate_details = await self._validate_and_gate(executor, sample, attempt, generation)
            attempts.append(Attempt(attempt, verdict, generation, gate_details))
            self._debug_dump(sample, attempt, generation, verdict, generation.response)
            if verdict.ok or not self.backend.supports_repair:
                break
            repair = RepairContext(generation.source, str(verdict.category), verdict.message)
        return Outcome(sample, attempts)

    def _debug_dump(
        self, sample: Sample, attempt: int, generation: Generation | None, verdict: Verdict, response: str
    ) -> None:
        """single_debug: keep the prompt, response, program and verdict of every attempt on disk."""
        if self.debug_dir is None:
            return
        folder = self.debug_dir / f"{sample.id}-attempt{attempt}"
        folder.mkdir(parents=True, exist_ok=True)
        if generation is not None:
            (folder / "prompt.txt").write_text(generation.prompt or "(built-in composer: no prompt)\n")
            (folder / f"{generation.entry_point}.py").write_text(generation.source)
        (folder / "response.txt").write_text(response or "")
        (folder / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2, default=str))
        if self.config.verbose:
            status = "ACCEPTED" if verdict.ok else f"REJECTED {verdict.category} at {verdict.stage}"
            print(f"[{sample.id} attempt {attempt}] {status}: {verdict.message[:500]}")
            print(f"  debug files: {folder}")

    # ----- commit (strict index order) -----------------------------------------------------------------------
    def _base_record(self, sample: Sample, attempt: Attempt) -> dict[str, Any]:
        generation = attempt.generation
        return {
            "id": sample.id,
            "index": sample.index,
            "attempt": attempt.attempt,
            "seed": sample.seed,
            "sampled_ops": sample.sampled_ops,
            "final_pattern": generation.final_pattern if generation else [],
            "entry_point": generation.entry_point if generation else None,
            "backend": generation.backend if generation else self.backend.name,
            "model": generation.model if generation else self.backend.model,
            "created_at": time.time(),
        }

    def _final_acceptance(self, outcome: Outcome) -> Attempt | None:
        """The accepted attempt if it also passes the commit-time checks (stateful gates, a free file name);
        otherwise None, with the attempt's verdict turned into the rejection."""
        accepted = outcome.accepted
        if accepted is None or accepted.generation is None:
            return None
        generation = accepted.generation
        if self.stateful_gates:
            item = _gate_input(outcome.sample.id, generation, accepted.verdict)
            rejection, details = _run_gates(self.stateful_gates, item)
            accepted.gate_details.update(details)
            if rejection is not None:
                accepted.verdict = rejection
                return None
        problem = self.store.collision(f"{generation.entry_point}.py", generation.source, outcome.sample.id)
        if problem is not None:
            accepted.verdict = Verdict.reject(
                Stage.GATE, Category.NAME_COLLISION, problem, timings=accepted.verdict.timings
            )
            return None
        return accepted

    def _commit(self, outcome: Outcome) -> None:
        """Write the sample's outcome (rejected attempts + acceptance) to the store as one unit."""
        accepted = self._final_acceptance(outcome)
        failed = outcome.attempts if accepted is None else outcome.attempts[:-1]
        rejected_records: list[dict[str, Any]] = []
        for position, attempt in enumerate(failed):
            record = self._base_record(outcome.sample, attempt)
            record.update(
                stage=attempt.verdict.stage,
                category=attempt.verdict.category,
                message=attempt.verdict.message[:4000],
                final=accepted is None and position == len(failed) - 1,
            )
            rejected_records.append(record)
        accepted_record = None
        if accepted is None or accepted.generation is None:
            self.store.commit(rejected_records)
        else:
            generation, verdict = accepted.generation, accepted.verdict
            accepted_record = self._base_record(outcome.sample, accepted)
            accepted_record.update(
                file=f"{generation.entry_point}.py",
                prompt_sha256=generation.prompt_sha256,
                input_shapes=verdict.input_shapes,
                output_shapes=verdict.output_shapes,
                timings=verdict.timings,
                checks=verdict.checks,
                gates=accepted.gate_details,
            )
            self.store.commit(rejected_records, (generation.source, accepted_record))
            item = _gate_input(outcome.sample.id, generation, verdict)
            for gate in self.gates:
                gate.admit(item)
        self.stats.record_sample(rejected_records, accepted_record)
        final_pattern = accepted_record["final_pattern"] if accepted_record else []
        self.sampler.observe(outcome.sample, accepted_record is not None, final_pattern)

    async def _wait_committed(self, index: int) -> None:
        while self._committed_upto < index:
            self._commit_event.clear()
            await self._commit_event.wait()

    def _stats_payload(self, wall_s: float) -> dict[str, Any]:
        usage = self.backend.usage()
        return self.stats.to_dict(
            {
                "model_name": self.config.model_name,
                "backend": self.backend.name,
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "calls": usage.calls,
                },
                "cost_usd": round(self.backend.cost_usd(), 6),
                "backend_stats": self.backend.stats(),
                "accepted_per_min": round(60 * self.stats.accepted / wall_s, 2) if wall_s > 0 else 0.0,
                "samples_per_min": round(60 * self.stats.samples / wall_s, 2) if wall_s > 0 else 0.0,
                "num_worker": self.config.num_worker,
                "previously_done": len(self.state.done_ids),
            }
        )

    # ----- main loop -----------------------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        started = time.time()
        self._replay_history()
        done = self.state.done_ids
        pending = [
            i for i in range(self.config.num_total_samples) if sample_id(self.config.seed, i) not in done
        ]
        skipped = self.config.num_total_samples - len(pending)
        progress = Progress(self.config.num_total_samples, skipped, self.config.progress)
        if skipped:
            progress.write(
                f"resuming {self.store.root}: {skipped} samples already done, {len(pending)} to go"
            )
        in_flight = self.config.num_worker * 2 + (
            self.config.max_concurrency if self.backend.name != "builtin" else 0
        )
        slots = asyncio.Semaphore(in_flight)
        finished: dict[int, Outcome] = {}
        next_position = 0
        last_stats = 0.0

        def flush_ready() -> None:
            nonlocal next_position, last_stats
            while next_position < len(pending) and pending[next_position] in finished:
                index = pending[next_position]
                self._commit(finished.pop(index))
                next_position += 1
                progress.update(self.stats)
            # indices done in earlier runs count as committed for the coverage sampler's wait
            self._committed_upto = (
                pending[next_position] - 1 if next_position < len(pending) else self.config.num_total_samples
            )
            self._commit_event.set()
            now = time.time()
            if now - last_stats >= STATS_INTERVAL_S:
                last_stats = now
                self.store.write_stats(self._stats_payload(now - started))

        async def run_one(executor: ValidationExecutor, index: int) -> None:
            try:
                try:
                    outcome = await self._process(executor, index)
                except Exception as error:  # a bug must cost one sample, not the run
                    sample = self.sampler.sample(index)
                    message = f"internal error: {error!r}\n{traceback.format_exc(limit=5)}"
                    outcome = Outcome(
                        sample, [Attempt(0, Verdict.reject(Stage.SANDBOX, Category.CRASH, message))]
                    )
                finished[index] = outcome
                flush_ready()
            finally:
                slots.release()

        executor = create_executor(self.config)
        tasks: list[asyncio.Task] = []
        try:
            flush_ready()
            for index in pending:
                await slots.acquire()
                tasks.append(asyncio.create_task(run_one(executor, index)))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            executor.close()
            progress.close()
            await self.backend.aclose()
            wall = time.time() - started
            payload = self._stats_payload(wall)
            self.store.write_stats(payload)
            self.store.close()
        self._write_report()
        return RunSummary(
            output_dir=str(self.store.root),
            samples=self.stats.samples,
            accepted=self.stats.accepted,
            rejected=self.stats.rejected,
            skipped=skipped,
            wall_s=wall,
            stats=payload,
        )

    def _write_report(self) -> None:
        try:
            from synth_modules.report import write_report
        except ImportError:
            return
        try:
            write_report(self.store.root)
        except Exception as error:  # the report must never cost the run its data
            print(f"warning: report generation failed: {error!r}")


def run_generation(config: GeneratorConfig) -> RunSummary:
    """Run (or resume) a generation job and print its summary."""
    run = GenerationRun(config)
    summary = asyncio.run(run.run())
    print(summary_table(summary.stats, summary.output_dir))
    return summary


def summary_path(output_dir: str) -> Path:
    return Path(output_dir) / "stats.json"
