"""The evaluator's public face: `Evaluator(device=...).evaluate(task, candidate_source, name) -> EvalResult`.

    with Evaluator(device="cuda") as evaluator:
        result = evaluator.evaluate(load_task("1_Foo.py"), candidate_source, name="try-3")

`evaluate` never raises for a candidate's fault: source-level rejections (no ModelNew, a reward-hack pattern)
return at once, everything else runs in an isolated worker and comes back as one categorized result. Compiled
baselines are measured once per task and GPU in a trusted worker and cached (baselines.py).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel_search.evaluator import baselines as bl
from kernel_search.evaluator import hacks
from kernel_search.evaluator.isolation import HANDLER, IsolatedRun, IsolationSettings, run_isolated
from kernel_search.evaluator.result import (
    COMPILE_ERROR,
    CRASH,
    REWARD_HACK,
    TIMEOUT,
    EvalResult,
)
from kernel_search.evaluator.timing import TimingSettings
from kernel_search.placement.devices import DeviceSlot, SlotAssigner, default_slot
from kernel_search.tasks import Task, check_candidate_source, load_task
from synth_modules.sandbox.isolation import require_landlock

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "kernel_search")


@dataclass(frozen=True)
class EvalOptions:
    """Every knob of an evaluation, with defaults that hold the evaluator's guarantees."""

    timeout_s: float = 300.0  # one candidate's whole worker run (compile included)
    baseline_timeout_s: float = 900.0
    correctness_sets: int = 3
    seed: int = 0
    timing: TimingSettings = field(default_factory=TimingSettings)
    baselines: tuple[str, ...] = (bl.COMPILE, bl.MAX_AUTOTUNE)  # () measures eager only
    static_checks: bool = True  # off only to test what the runtime checks catch on their own
    profile_check: bool = True
    memory_limit_mb: int = 16384
    cpu_threads: int = 1
    landlock: bool = (
        True  # False: run candidates even where Landlock is missing (the sandbox's unsafe switch)
    )
    cache_dir: str | None = None  # baselines cache and device locks; default ~/.cache/kernel_search
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. {"TRITON_INTERPRET": "1"} on CPU

    def __post_init__(self) -> None:
        unknown = set(self.baselines) - set(bl.COMPILE_MODES)
        if unknown:
            raise ValueError(f"unknown baselines {sorted(unknown)}; valid: {', '.join(bl.COMPILE_MODES)}")
        if self.correctness_sets < 3:
            raise ValueError("correctness needs at least 3 input sets")
        if self.timing.min_reps < 30:
            raise ValueError("timing needs at least 30 repetitions")


class Evaluator:
    """Scores candidates for tasks; usable from several threads at once (eval-all --jobs).

    `slots` (kernel_search/placement/devices.py) spread evaluations over several GPUs: each evaluation takes the
    least-loaded slot, its worker pinned to that GPU and timed under that GPU's lock. Without slots, `device`
    is the one slot (as before)."""

    def __init__(
        self, device: str = "cuda", options: EvalOptions | None = None, slots: list[DeviceSlot] | None = None
    ):
        if device != "cpu" and not device.startswith("cuda"):
            raise ValueError(f"device must be cpu or cuda[:N], not {device!r}")
        self.device = "cuda:0" if device == "cuda" else device
        self.slots = list(slots) if slots else [default_slot(self.device)]
        if any(s.is_cpu != (self.device == "cpu") for s in self.slots):
            raise ValueError(f"device {device!r} and slots {[s.device for s in self.slots]} disagree")
        self.assigner = SlotAssigner(self.slots)
        self.options = options or EvalOptions()
        require_landlock(
            not self.options.landlock
        )  # no Landlock and no unsafe switch: refuse before any work
        self.cache_dir = self.options.cache_dir or DEFAULT_CACHE
        self.cache = bl.BaselineCache(self.cache_dir)
        self._baseline_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing is held between evaluations (each worker is gone when its result is in)."""

    # --- public --------------------------------------------------------------------------------------------
    def evaluate(self, task: Task | str | Path, candidate_source: str, name: str = "candidate") -> EvalResult:
        started = time.monotonic()
        task = task if isinstance(task, Task) else load_task(task)
        with self.assigner.lease() as slot:
            result = self._evaluate(task, candidate_source, name, slot)
        result.device = "cpu" if self.device == "cpu" else "cuda"
        result.seconds = round(time.monotonic() - started, 3)
        return result

    # --- internals -----------------------------------------------------------------------------------------
    def _request(self, task: Task, mode: str, slot: DeviceSlot, **extra: Any) -> dict[str, Any]:
        return {
            "mode": mode,
            "device": slot.device,
            "lock_name": slot.lock_name,
            "task_source": task.source,
            "seed": self.options.seed,
            "cpu_threads": self.options.cpu_threads,
            "timing": dataclasses.asdict(self.options.timing),
            "lock_dir": os.path.join(self.cache_dir, "locks"),
            **extra,
        }

    def _isolation(
        self, timeout_s: float, slot: DeviceSlot, shared_cache: str | None = None
    ) -> IsolationSettings:
        return IsolationSettings(
            device="cpu" if self.device == "cpu" else "cuda",
            timeout_s=timeout_s,
            memory_limit_mb=self.options.memory_limit_mb,
            landlock=self.options.landlock,
            extra_env=dict(self.options.extra_env),
            shared_cache_dir=shared_cache,
            visible_devices=slot.visible_devices,
        )

    def _evaluate(self, task: Task, source: str, name: str, slot: DeviceSlot) -> EvalResult:
        problem = check_candidate_source(source, name)
        if problem:
            return EvalResult.failure(task.name, name, COMPILE_ERROR, problem, phase="static")
        findings: list[str] = []
        if self.options.static_checks:
            strict, warnings = hacks.scan_source(source)
            if strict is not None:
                return EvalResult.failure(task.name, name, REWARD_HACK, strict.message, hack=strict.kind,
                                          phase="static")  # fmt: skip
            findings = [w.kind for w in warnings]
        request = self._request(
            task,
            "candidate",
            slot,
            candidate_source=source,
            correctness_sets=self.options.correctness_sets,
            profile_check=self.options.profile_check,
        )
        run = run_isolated(HANDLER, request, self._isolation(self.options.timeout_s, slot))
        result = _interpret(run, task.name, name, self.options.timeout_s)
        result.flags = sorted(set(result.flags) | set(findings))
        if result.correct and result.runtime_us:
            self._add_baselines(task, result, slot)
        return result

    def _baseline_lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._baseline_locks.setdefault(key, threading.Lock())

    def baselines_for(
        self, task: Task, gpu: str | None, torch_version: str, slot: DeviceSlot | None = None
    ) -> dict[str, Any]:
        """The cached compiled baselines of `task` on this GPU model, measuring them first (on `slot`, else
        the least-loaded one) when missing; slots of one GPU model share them."""
        if slot is None:
            with self.assigner.lease() as leased:
                return self.baselines_for(task, gpu, torch_version, leased)
        wanted = list(self.options.baselines)
        key = bl.cache_key(task.sha, gpu, torch_version)
        with self._baseline_lock(key):
            entry = self.cache.get(key) or {}
            missing = [
                b for b in wanted if b not in entry.get("baselines", {}) and b not in entry.get("errors", {})
            ]
            if missing:
                request = self._request(task, "baseline", slot, baselines=missing)
                shared = os.path.join(self.cache_dir, "compile-cache")
                os.makedirs(shared, exist_ok=True)
                run = run_isolated(
                    HANDLER, request, self._isolation(self.options.baseline_timeout_s, slot, shared)
                )
                reply = run.last("result") or {}
                entry.setdefault("baselines", {}).update(
                    {k: v for k, v in (reply.get("baselines") or {}).items() if k in missing}
                )
                if not reply.get("baselines"):  # the worker itself failed: report it, cache nothing
                    failure = reply.get("message") or _death(run)
                    return {**entry, "errors": {**entry.get("errors", {}), **dict.fromkeys(missing, failure)}}
                entry.setdefault("errors", {}).update(reply.get("errors") or {})
                entry["task"] = task.name
                self.cache.put(key, entry)
        return entry

    def _add_baselines(self, task: Task, result: EvalResult, slot: DeviceSlot) -> None:
        eager = result.baselines.get("eager")
        if eager:
            result.speedup_vs_eager = eager / result.runtime_us
        if not self.options.baselines:
            return
        env = result.timing.get("env") or {}
        entry = self.baselines_for(task, env.get("gpu"), str(env.get("torch", "")), slot)
        for name in self.options.baselines:
            value = entry.get("baselines", {}).get(name)
            if value:
                result.baselines[name] = value
            elif name in entry.get("errors", {}):
                result.timing.setdefault("baseline_errors", {})[name] = entry["errors"][name][:300]
        speedup, method = bl.speedup_vs_compiled(
            result.runtime_us, result.speedup_vs_eager, entry.get("baselines", {}), bl.COMPILE
        )
        if speedup is not None:
            result.speedup_vs_compile = speedup
            result.timing["speedup_vs_compile_method"] = method


def _death(run: IsolatedRun) -> str:
    if run.returncode is not None and run.returncode < 0:
        try:
            name = signal.Signals(-run.returncode).name
        except ValueError:
            name = str(-run.returncode)
        return f"worker killed by {name}"
    tail = run.stderr_tail.strip().splitlines()[-3:]
    return f"worker exited with status {run.returncode}" + (f": {' | '.join(tail)}"[:600] if tail else "")


def _interpret(run: IsolatedRun, task: str, candidate: str, timeout_s: float) -> EvalResult:
    """The worker's last `result` message as an EvalResult; a timeout or a silent death as one too."""
    phase = run.last("phase") or "start"
    env = run.last("env") or {}
    reply = run.last("result")
    if run.timed_out:
        return EvalResult.failure(task, candidate, TIMEOUT, f"no result within {timeout_s:g} s (in {phase})",
                                  phase=phase, gpu=env.get("gpu"))  # fmt: skip
    if reply is None:
        return EvalResult.failure(task, candidate, CRASH, f"{_death(run)} (in {phase})", phase=phase,
                                  gpu=env.get("gpu"))  # fmt: skip
    fields = {k: v for k, v in reply.items() if k != "env"}
    leftover = hacks.leftover_finding(run.last("integrity") or [])
    if leftover is not None and fields.get("category") in ("ok", "fallback"):  # a verdict it may have forged
        fields = {
            "category": REWARD_HACK,
            "correct": False,
            "message": leftover.message,
            "hack": leftover.kind,
        }
    result = EvalResult.from_dict({"task": task, "candidate": candidate, "phase": phase, **fields})
    result.gpu = env.get("gpu")
    result.timing = {**result.timing, "env": env}
    if result.category == CRASH and run.returncode not in (0, None):
        result.message = f"{result.message} ({_death(run)})"
    return result
